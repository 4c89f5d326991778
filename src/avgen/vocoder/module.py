"""MelGAN vocoder training (experiments `vocoder_melgan_<dataset>`) and its use by sampling (`load_vocoder`).

Alternating updates with two Adam optimisers (lr 1e-4, betas (0.5, 0.9); MelGAN §3): the discriminator on real
vs generated segments, then the generator on least-squares GAN + 2 x feature matching + 10 x log-mel L1.
The mel of each real segment is computed in the step (`LogMel`, the store's own normalisation).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate

from avgen.data.representations import AudioLogMel
from avgen.methods.base import Trainable
from avgen.models.vocoder import MelGAN, pad_to_frames
from avgen.utils.checkpoints import load_checkpoint, load_network
from avgen.vocoder.losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss, mel_l1_loss


class MelGANModule(Trainable):
    """A MelGAN vocoder for a store's mel: trained by `avgen train`, not a generative method (no modality;
    scored by `extra_scores`, listed apart in comparisons)."""

    name = "vocoder"

    def __init__(
        self,
        net: MelGAN,
        optimizer: partial,
        feature_weight: float = 2.0,
        mel_weight: float = 10.0,
        score_batches: int = 4,
    ):
        super().__init__()
        self.net, self.optimizer, self.score_batches = net, optimizer, score_batches
        self.feature_weight, self.mel_weight = feature_weight, mel_weight
        # two players, two optimisers: Lightning counts each optimiser step, so global_step = 2 x iterations
        self.automatic_optimization = False

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        wav = pad_to_frames(batch["audio"], self.net.generator.hop_length)  # (B, S), S a multiple of the hop
        mel = self.net.mel(wav)  # (B, n_mels, S / hop + 1)
        fake = self.net.vocode(mel)[:, None]  # (B, 1, S)
        real = wav[:, None]  # (B, S) -> (B, 1, S)

        loss_d = lsgan_discriminator_loss(self.net.discriminator(real), self.net.discriminator(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()

        d_real, d_fake = self.net.discriminator(real), self.net.discriminator(fake)
        adv, fm = lsgan_generator_loss(d_fake), feature_matching_loss(d_real, d_fake)
        mel_l1 = mel_l1_loss(self.net.mel(fake[:, 0]), mel)
        loss_g = (adv + self.feature_weight * fm + self.mel_weight * mel_l1).mean()
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.log_dict(
            {
                "train/loss": loss_g,
                "train/loss_d": loss_d,
                "train/adversarial": adv.mean(),
                "train/feature_matching": fm.mean(),
                "train/mel_l1": mel_l1.mean(),
            },
            prog_bar=True,
            batch_size=wav.shape[0],
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        wav = pad_to_frames(batch["audio"], self.net.generator.hop_length)
        mel = self.net.mel(wav)
        self.log(
            "val/mel_l1",
            mel_l1_loss(self.net.mel(self.net.vocode(mel)), mel).mean(),
            batch_size=wav.shape[0],
            sync_dist=True,
        )

    def configure_optimizers(self):
        return [self.optimizer(self.net.generator.parameters()), self.optimizer(self.net.discriminator.parameters())]

    @torch.no_grad()
    def extra_scores(self, dm) -> dict[str, float]:
        """Log-mel L1 of re-synthesised validation segments, MelGAN vs Griffin-Lim on the same mels (lower is
        better): what this vocoder buys over the default."""
        from avgen.decoding.griffin_lim import BatchedGriffinLim

        self.eval()
        griffin_lim = BatchedGriffinLim.from_metadata(self.net.mel.params, device=str(self.device))
        ours, gl = [], []
        for i, batch in enumerate(dm.reference_loader()):
            if i == self.score_batches:
                break
            wav = pad_to_frames(batch["audio"], self.net.generator.hop_length).to(self.device)
            mel = self.net.mel(wav)
            ours.append(mel_l1_loss(self.net.mel(self.net.vocode(mel)), mel).cpu())
            gl_wav = torch.from_numpy(griffin_lim.batch(mel.cpu().numpy())).to(self.device)
            gl.append(mel_l1_loss(self.net.mel(pad_to_frames(gl_wav, self.net.generator.hop_length)), mel).cpu())
        return {"mel_l1": float(torch.cat(ours).mean()), "mel_l1_griffin_lim": float(torch.cat(gl).mean())}


class MelGANVocoder:
    """A trained generator as a callable: normalised log-mel (n_mels, T) -> waveform (samples,)."""

    def __init__(self, net: MelGAN):
        self.net = net.eval()
        self.sample_rate = net.mel.params["sample_rate"]

    @torch.no_grad()
    def batch(self, mels: np.ndarray) -> np.ndarray:
        """(B, n_mels, T) -> (B, samples) in one forward on the network's device."""
        x = torch.from_numpy(np.asarray(mels, np.float32)).to(next(self.net.parameters()).device)
        return self.net.vocode(x).float().cpu().numpy()

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        return self.batch(np.asarray(mel)[None])[0]


def load_vocoder(checkpoint: str | Path | None, audio_meta: dict) -> MelGANVocoder:
    """A `vocoder_melgan_<dataset>` checkpoint, checked against the store's mel parameters."""
    if not checkpoint:
        raise ValueError(
            "evaluate.vocoder.checkpoint: set it to a vocoder run's last.ckpt (make train EXP=vocoder_melgan_<dataset>)"
        )
    state = load_checkpoint(Path(checkpoint), "train it first: make train EXP=vocoder_melgan_<dataset>")
    cfg = state.get("avgen_config")
    if cfg is None:
        raise ValueError(f"{checkpoint} carries no avgen_config: not an avgen vocoder checkpoint")
    net = instantiate(cfg["model"])
    if not isinstance(net, MelGAN):
        raise ValueError(f"{checkpoint} is a {type(net).__name__} checkpoint, not a MelGAN vocoder")
    mismatched = {
        k: (net.mel.params[k], audio_meta[k])
        for k in AudioLogMel.MEL_KEYS
        if not np.isclose(float(net.mel.params[k]), float(audio_meta[k]))
    }
    if mismatched:
        raise ValueError(f"{checkpoint}: the vocoder's mel differs from the store's (vocoder, store): {mismatched}")
    load_network(net, state, checkpoint)
    return MelGANVocoder(net)
