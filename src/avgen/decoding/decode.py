"""Stored-representation arrays -> media: RGB frames in [0, 1] and mono waveforms.

Which decoding applies is read from the store's metadata (the `class` each representation recorded), so
samples of any run decode the same way as that run's training data was encoded:

- video: `VideoPixels` (identity, [-1, 1] -> [0, 1]); `VideoVAELatents` (the same diffusers AutoencoderKL,
  from the `vae_path` recorded at preparation time, frame by frame);
- audio: `AudioWaveform` (identity); `AudioLogMel` through a vocoder (Griffin-Lim by default, or a trained
  MelGAN run: `avgen.vocoder`); `AudioLDMLatents` through the AudioLDM pipeline's VAE and vocoder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avgen.data.representations import load_vae


class VideoDecoder:
    def __init__(self, meta: dict, batch_size: int = 16, device: str | None = None):
        self.meta, self.batch_size = meta, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.fps = 1.0 / meta["seconds_per_frame"]
        self._vae = None
        if meta["class"] not in ("VideoPixels", "VideoVAELatents"):
            raise ValueError(f"no decoder for the video representation {meta['class']} (store metadata)")

    def _load_vae(self):
        if self._vae is None:  # the VAE the store's latents were made with (its path is in the metadata)
            self._vae = load_vae(self.meta["vae_path"], self.device, "the store's video vae_path")
        return self._vae

    @torch.no_grad()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One clip (F, C, h, w) -> (F, 3, H, W) float32 in [0, 1]."""
        if self.meta["class"] == "VideoPixels":
            return np.clip((np.asarray(x, np.float32) + 1) / 2, 0, 1)
        vae, z = self._load_vae(), torch.from_numpy(np.asarray(x, np.float32))
        frames = [
            vae.decode(c.to(self.device) / self.meta["scaling_factor"]).sample.float().cpu()
            for c in z.split(self.batch_size)
        ]
        return ((torch.cat(frames).clamp(-1, 1) + 1) / 2).numpy()


class AudioLDMDecoder:
    """AudioLDM latents (C, T/r, M/r) -> log-mel (T, M) by the pipeline's VAE -> waveform by its HiFi-GAN
    vocoder (`vocoder/` beside the `vae/` the store recorded)."""

    def __init__(self, meta: dict, device: str | None = None):
        from transformers import SpeechT5HifiGan

        vocoder_path = Path(meta["vae_path"]).parent / "vocoder"
        if not (vocoder_path / "config.json").is_file():
            raise FileNotFoundError(
                f"decoding AudioLDM latents needs the pipeline's vocoder/ at {vocoder_path} "
                "(beside the vae/ the store recorded): it is gone"
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.vae = load_vae(meta["vae_path"], self.device, "the store's AudioLDM vae_path")
        self.vocoder = SpeechT5HifiGan.from_pretrained(vocoder_path).to(self.device).eval()
        self.scaling_factor = float(meta["scaling_factor"])

    @torch.no_grad()
    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(np.asarray(z, np.float32))[None].to(self.device) / self.scaling_factor
        mel = self.vae.decode(z).sample[:, 0]  # (1, 1, T, M) -> (1, T, M)
        return self.vocoder(mel)[0].float().cpu().numpy()  # (1, samples) -> (samples,)


# Coarse mels (the synthetic store's 16 bins, hop ~ n_fft) leave Griffin-Lim no overlap to recover phase from.
# Onset F1 of decoded audio against the mel's own onsets, 64 synthetic test clips: band synthesis 0.643,
# Griffin-Lim 0.393 (docs/metrics.md).
COARSE_MEL_BINS = 32


def mel_vocoder(meta: dict, kind: str = "auto", n_iter: int = 32, device: str | None = None):
    """A mel -> waveform decoder: `griffin_lim` (batched, on the accelerator when there is one),
    `griffin_lim_librosa` (per clip, CPU reference), `band_synth` (additive, for tonal coarse mels), or `auto`:
    band synthesis for mels of at most COARSE_MEL_BINS bins, Griffin-Lim above."""
    from avgen.decoding.band_synth import BandSynth
    from avgen.decoding.export import GriffinLim
    from avgen.decoding.griffin_lim import BatchedGriffinLim

    if kind == "auto":
        kind = "band_synth" if meta["n_mels"] <= COARSE_MEL_BINS else "griffin_lim"
    if kind == "griffin_lim":
        return BatchedGriffinLim.from_metadata(meta, n_iter=n_iter, device=device)
    if kind == "griffin_lim_librosa":
        return GriffinLim.from_metadata(meta, n_iter=n_iter)
    if kind == "band_synth":
        return BandSynth.from_metadata(meta)
    raise ValueError(f"no mel vocoder {kind!r}: auto, griffin_lim, griffin_lim_librosa, band_synth (or melgan)")


class AudioDecoder:
    def __init__(
        self, meta: dict, vocoder: Callable[[np.ndarray], np.ndarray] | None = None, device: str | None = None
    ):
        self.meta, self.sample_rate = meta, int(meta["sample_rate"])
        if meta["class"] == "AudioLogMel":
            self.vocoder = vocoder or mel_vocoder(meta, "auto", device=device)
        elif meta["class"] == "AudioLDMLatents":
            self.vocoder = AudioLDMDecoder(meta)
        elif meta["class"] != "AudioWaveform":
            raise ValueError(f"no decoder for the audio representation {meta['class']} (store metadata)")

    def batch(self, xs: np.ndarray | list[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Clips of one shape -> waveforms; vocoders with a `batch` method (Griffin-Lim on the accelerator,
        MelGAN) decode `batch_size` clips per call instead of one at a time."""
        batched = getattr(getattr(self, "vocoder", None), "batch", None)
        if batched is None or self.meta["class"] == "AudioWaveform":
            return [self(x) for x in xs]
        xs = np.asarray(xs, np.float32)
        return [
            w.reshape(-1)
            for start in range(0, len(xs), batch_size)
            for w in np.asarray(batched(xs[start : start + batch_size]), np.float32)
        ]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One clip ((n_mels, T), (1, S) or AudioLDM latents) -> (S,) float32."""
        if self.meta["class"] == "AudioWaveform":
            return np.asarray(x, np.float32).reshape(-1)
        return np.asarray(self.vocoder(np.asarray(x, np.float32)), np.float32).reshape(-1)
