"""CMMD LightningModule: wires a joint network, a schedule, the losses and the negatives (paper §2, App. B.2).

It receives built parts (network, schedule, negative sampler, optimizer partial) and only wires them; the
math lives in `losses.py`, `negatives.py`, `avgen.diffusion` and `avgen.sampling`. EMA weights come from
Lightning's `EMAWeightAveraging` callback (configs/callbacks/), which also makes checkpoints hold them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from avgen.data.clips import clips
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.base import DenoisingMethod
from avgen.methods.cmmd.losses import contrastive_loss, joint_diffusion_loss
from avgen.methods.cmmd.negatives import NegativeSampler
from avgen.utils.checkpoints import load_checkpoint
from avgen.utils.checkpoints import load_network as load_network_weights


def step_decay(step: int, every: int, factor: float, floor_ratio: float) -> float:
    """CMMD App. B.2: the learning rate is multiplied by `factor` every `every` steps, down to a floor."""
    return max(factor ** (step // every), floor_ratio)


class CMMDModule(DenoisingMethod):
    """CMMD (docs/methods.md#cmmd); with eta = 0 nCMMD, with coupling none the independent / single-modal models."""

    name = "cmmd"
    conditional = True  # v2a / a2v by reconstruction guidance (CMMD Eq. 3)
    prediction = "v"  # the network predicts the velocity v = sqrt(abar) eps - sigma x0 (CMMD §2)
    default_sampler = "ddim"

    @staticmethod
    def variant(cfg: DictConfig) -> str:
        parts = [f"coupling={cfg.model.get('coupling')}", f"eta={cfg.method.get('eta')}"]
        if cfg.method.get("eta") and cfg.method.get("negative_noise") == "independent":  # the Algorithm 1 ablation
            parts.append("negative_noise=independent")
        if "modalities" in cfg.model and len(cfg.model.modalities) == 1:
            parts.insert(0, f"{cfg.model.modalities[0]} only")
        return ", ".join(parts)

    @staticmethod
    def start_checkpoints(method_cfg: DictConfig) -> list[str]:
        return [method_cfg.init_from] if method_cfg.get("init_from") else []

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule,
        optimizer: partial,
        negatives: NegativeSampler,
        eta: float = 5e-5,
        max_negative_loss: float | None = None,
        negatives_per_step: int | None = None,
        contrastive_from_step: int = 0,
        lr_decay_every: int = 80_000,
        lr_decay_factor: float = 0.8,
        lr_floor: float = 2e-5,
        init_from: str | None = None,
        negative_noise: str = "shared",
    ):
        super().__init__(net, schedule, optimizer)
        self.negatives = negatives
        self.eta, self.max_negative_loss = float(eta), max_negative_loss
        self.negatives_per_step = negatives_per_step
        self.contrastive_from_step = contrastive_from_step
        if negative_noise not in ("shared", "independent"):
            raise ValueError(f"method.negative_noise must be shared or independent, got {negative_noise!r}")
        self.negative_noise = negative_noise
        self.lr_decay = (lr_decay_every, lr_decay_factor, lr_floor)
        if eta and len(self.modalities) < 2:
            raise ValueError("the contrastive loss needs both modalities; single-modal bases train with eta=0")
        if init_from:
            self.load_network(init_from)

    def load_network(self, path: str) -> None:
        """Fine-tuning start (e.g. CMMD from nCMMD): network weights from an avgen checkpoint."""
        ckpt = load_checkpoint(
            path, "train the run this one fine-tunes from first (for cmmd_<dataset>: `make train EXP=ncmmd_<dataset>`)"
        )
        load_network_weights(self.net, ckpt, path)

    # --------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        x0 = clips(batch, self.modalities)
        t = self.schedule.sample_timesteps(batch["label"].shape[0], self.device)
        if self.eta == 0.0 or self.global_step < self.contrastive_from_step:  # nCMMD: the joint loss alone
            loss = joint_diffusion_loss(self.net, self.schedule, x0, t, _noise_like(x0)).mean()
            self.log_dict({"train/loss": loss, "train/loss_positive": loss}, prog_bar=True, batch_size=t.shape[0])
            return loss
        neg_audio, _ = self.negatives(batch, "audio")
        neg_video, _ = self.negatives(batch, "video")
        # a random subset of the negatives per step (docs/methods.md#cmmd: memory and time)
        b = x0["audio"].shape[0]
        k = min(self.negatives_per_step or b, b)
        sub = torch.randperm(b, device=self.device)[:k]
        # positives, (a', v) and (a, v') in one forward pass
        pairs = {
            "audio": torch.cat([x0["audio"], neg_audio[sub], x0["audio"][sub]]),
            "video": torch.cat([x0["video"], x0["video"][sub], neg_video[sub]]),
        }
        per_sample = joint_diffusion_loss(
            self.net,
            self.schedule,
            pairs,
            torch.cat([t, t[sub], t[sub]]),
            negative_pair_noise(x0, sub, self.negative_noise),
        )
        positive, negative_audio, negative_video = per_sample.split([b, k, k])
        loss = contrastive_loss(
            positive.mean(), negative_audio.mean(), negative_video.mean(), self.eta, self.max_negative_loss
        )
        self.log_dict(
            {
                "train/loss": loss,
                "train/loss_positive": positive.mean(),
                "train/loss_negative_audio": negative_audio.mean(),
                "train/loss_negative_video": negative_video.mean(),
            },
            prog_bar=True,
            batch_size=b,
        )
        return loss

    def denoising_loss(self, x0: dict[str, Tensor], t: Tensor, noise: dict[str, Tensor]) -> Tensor:
        return joint_diffusion_loss(self.net, self.schedule, x0, t, noise)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters())
        every, factor, floor = self.lr_decay
        base_lr = optimizer.param_groups[0]["lr"]
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, partial(step_decay, every=every, factor=factor, floor_ratio=floor / base_lr)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _noise_like(x: dict[str, Tensor]) -> dict[str, Tensor]:
    return {m: torch.randn_like(v) for m, v in x.items()}


# CMMD Algorithm 1: the negatives reuse the positive's noise (and t), so L - eta L_neg is a paired difference
def negative_pair_noise(x0: dict[str, Tensor], sub: Tensor, mode: str = "shared") -> dict[str, Tensor]:
    """Noise for [positives, (a', v) on `sub`, (a, v') on `sub`]: "shared" (Algorithm 1) gives each negative
    the noise its positive got, in both modalities, so the unchanged modality enters identically noised and
    the noise largely cancels in the difference; "independent" draws fresh noise (the ablation)."""
    eps = _noise_like(x0)
    if mode == "independent":
        return {m: torch.cat([e, torch.randn_like(e[sub]), torch.randn_like(e[sub])]) for m, e in eps.items()}
    return {m: torch.cat([e, e[sub], e[sub]]) for m, e in eps.items()}
