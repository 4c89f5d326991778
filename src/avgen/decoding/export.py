"""From stored-representation arrays back to media: Griffin-Lim vocoder and mp4 (H.264 + AAC) writing."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from avgen.data.media import write_mp4
from avgen.data.representations import AudioLogMel


class GriffinLim:
    """Normalised log-mel (n_mels, T) -> waveform, with librosa's mel inversion + Griffin-Lim."""

    def __init__(self, mel: AudioLogMel, n_iter: int = 32):
        self.mel, self.n_iter = mel, n_iter

    @classmethod
    def from_metadata(cls, meta: dict, n_iter: int = 32) -> GriffinLim:
        return cls(
            AudioLogMel.from_metadata(meta),
            n_iter,
        )

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        # float64 always: the numba functions behind mel_to_audio are compiled once for it (utils/numba_cache.py)
        power = self.mel.denormalise(np.clip(np.asarray(mel, dtype=np.float64), -1.0, 1.0))
        wav = librosa.feature.inverse.mel_to_audio(
            power,
            sr=self.mel.sample_rate,
            n_fft=self.mel.n_fft,
            hop_length=self.mel.hop_length,
            fmin=self.mel.fmin,
            fmax=self.mel.fmax,
            power=2.0,
            n_iter=self.n_iter,
            center=True,
        )
        peak = float(np.abs(wav).max())
        return (wav / peak * 0.9 if peak > 0.9 else wav).astype(np.float32)


def frames_to_uint8(frames: np.ndarray, upscale: int = 1) -> np.ndarray:
    """(F, 3, H, W) in [0, 1] -> (F, H*upscale, W*upscale, 3) uint8 (nearest upscaling for viewing)."""
    out = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)
    if upscale > 1:
        out = out.repeat(upscale, axis=1).repeat(upscale, axis=2)
    return out


def write_sample(
    path: Path, frames: np.ndarray, wav: np.ndarray, fps: float, sample_rate: int, min_side: int = 128
) -> Path:
    """One decoded pair ((F, 3, H, W) in [0, 1], mono waveform) as an mp4 with sound; small frames are
    upscaled (nearest) to at least `min_side` so that players show them."""
    upscale = max(1, -(-min_side // min(frames.shape[2:])))
    out = frames_to_uint8(frames, upscale)
    if out.shape[1] % 2 or out.shape[2] % 2:  # H.264 4:2:0 needs even sides
        out = out.repeat(2, axis=1).repeat(2, axis=2)
    peak = float(np.abs(wav).max()) if len(wav) else 0.0
    write_mp4(Path(path), out, int(round(fps)), wav / peak * 0.9 if peak > 1 else wav, sample_rate)
    return Path(path)
