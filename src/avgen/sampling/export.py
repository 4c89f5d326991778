"""From stored-representation arrays back to media: Griffin-Lim vocoder and mp4 (H.264 + AAC) writing."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from avgen.data.representations import AudioLogMel
from avgen.data.synthetic import write_mp4


class GriffinLim:
    """Normalised log-mel (n_mels, T) -> waveform, with librosa's mel inversion + Griffin-Lim."""

    def __init__(self, mel: AudioLogMel, n_iter: int = 32):
        self.mel, self.n_iter = mel, n_iter

    @classmethod
    def from_metadata(cls, meta: dict, n_iter: int = 32) -> "GriffinLim":
        return cls(AudioLogMel(meta["sample_rate"], meta["n_mels"], meta["n_fft"], meta["hop_length"], meta["fmin"],
                               meta["fmax"], meta["min_db"], meta["max_db"]), n_iter)

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        power = self.mel.denormalise(np.clip(mel, -1.0, 1.0))
        wav = librosa.feature.inverse.mel_to_audio(
            power, sr=self.mel.sample_rate, n_fft=self.mel.n_fft, hop_length=self.mel.hop_length,
            fmin=self.mel.fmin, fmax=self.mel.fmax, power=2.0, n_iter=self.n_iter, center=True)
        peak = float(np.abs(wav).max())
        return (wav / peak * 0.9 if peak > 0.9 else wav).astype(np.float32)


def pixels_to_uint8(video: np.ndarray, upscale: int = 1) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> (F, H*upscale, W*upscale, 3) uint8 (nearest upscaling for viewing)."""
    frames = ((np.clip(video, -1, 1) + 1) * 127.5 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)
    if upscale > 1:
        frames = frames.repeat(upscale, axis=1).repeat(upscale, axis=2)
    return frames


def write_sample(path: Path, video: np.ndarray, mel: np.ndarray, fps: float, vocoder: GriffinLim,
                 upscale: int = 4) -> Path:
    """One generated pair as an mp4 with sound."""
    frames = pixels_to_uint8(video, upscale)
    if frames.shape[1] % 2 or frames.shape[2] % 2:  # H.264 4:2:0 needs even sides
        frames = frames.repeat(2, axis=1).repeat(2, axis=2)
    write_mp4(Path(path), frames, int(round(fps)), vocoder(mel), vocoder.sample_rate)
    return Path(path)
