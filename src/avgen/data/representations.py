"""Representations a store can hold: how one clip window of a media file becomes one array.

A representation is computed in two stages so that decoding runs in parallel CPU workers while a learned
encoder (AutoencoderKL) runs batched in the main process (on a GPU when present):
`compute(media, t0, seconds)` returns a per-clip array in a worker, `finalize(batch)` maps a stack of
them to the stored form.

Time conventions (docs/methods.md#conventions): `t0` is the start of the stored window (clip start minus the
margin) on the
video's time axis. Video frame k shows the source frame on screen at `t0 + k / fps`. Mel frame k is centred
at `t0 + k * hop / sample_rate` (librosa `center=True`). Waveform sample k is at `t0 + k / sample_rate`.
A mel's STFT reads half a window beyond each end of the stored window (`context_seconds`): it is computed on
that padded segment and cropped, so the frames at a window's ends see the signal, as every other frame does,
not padding; the windowing keeps that context inside the file (`Windowing.starts`).
The seconds per frame of each time axis go into the store metadata; nothing downstream infers them from
shapes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import torch
import torch.nn.functional as F

from avgen.data.media import MediaFile


class Representation:
    """Base class. Subclasses set `modality`, `seconds_per_frame`, `time_axis` and the array layout."""

    modality: str  # "video" or "audio"
    time_axis: int  # axis of the per-clip array that is time
    layout: str  # e.g. "F C H W" or "C T"
    dtype: str = "float16"

    @property
    def seconds_per_frame(self) -> float:
        raise NotImplementedError

    @property
    def context_seconds(self) -> float:
        """Source read beyond each end of a window (a centred STFT's half window); 0 for frames and samples."""
        return 0.0

    def num_frames(self, seconds: float) -> int:
        """Frames covering `seconds` (floor: a frame is stored only if its start lies inside)."""
        return int(math.floor(seconds / self.seconds_per_frame + 1e-6))

    def compute(self, media: MediaFile, t0: float, seconds: float) -> np.ndarray:
        raise NotImplementedError

    def finalize(self, batch: np.ndarray) -> np.ndarray:
        """Map a stack of `compute` outputs (N, ...) to the stored arrays (N, ...)."""
        return batch.astype(self.dtype)

    def describe(self) -> dict[str, Any]:
        """Metadata recorded in the store for this representation."""
        return {
            "modality": self.modality,
            "class": type(self).__name__,
            "layout": self.layout,
            "time_axis": self.time_axis,
            "seconds_per_frame": self.seconds_per_frame,
            "dtype": self.dtype,
        }


def stft_context(n_fft: int, sample_rate: int) -> float:
    """Seconds a centred STFT reads beyond a frame's centre: half its window."""
    return (n_fft // 2) / sample_rate


def padded_audio(media: MediaFile, sample_rate: int, n_fft: int, t0: float, seconds: float) -> np.ndarray:
    """The audio of [t0 - n_fft // 2, t0 + seconds + n_fft) samples: an STFT of it with `center=False` has frame k
    centred at `t0 + k * hop / sample_rate`, like `center=True` on the window, but over signal, not padding."""
    pad = stft_context(n_fft, sample_rate)
    return media.audio(sample_rate, t0 - pad, seconds + pad + n_fft / sample_rate)


def load_vae(path: str | Path, device: str, what: str):
    """A diffusers AutoencoderKL, in eval mode on `device`, from a local save_pretrained directory or a weights
    registry name (`sd-vae-ft-mse`, `realistic-vision-v5.1/vae`: avgen.weights); a missing directory fails
    naming `what` (the config key, or what the store recorded it for)."""
    from diffusers import AutoencoderKL

    from avgen.weights import resolve

    path = resolve(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{what}={path}: expected a diffusers AutoencoderKL directory with config.json "
            "(as written by save_pretrained) or a weights name (avgen weights)"
        )
    return AutoencoderKL.from_pretrained(path).to(device).eval()


def resize_square(frames: np.ndarray, size: int) -> torch.Tensor:
    """Centre-crop to a square and resize: (N, H, W, 3) uint8 -> (N, 3, size, size) float in [-1, 1]."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (N, H, W, 3) -> (N, 3, H, W)
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False)
    return (x / 127.5 - 1.0).clamp(-1.0, 1.0)


class VideoPixels(Representation):
    """Centre-cropped, resized RGB frames in [-1, 1]: (F, 3, size, size)."""

    modality = "video"
    time_axis = 0
    layout = "F C H W"

    def __init__(self, fps: float, size: int, dtype: str = "float16"):
        if fps <= 0 or size <= 0:
            raise ValueError(f"VideoPixels needs fps > 0 and size > 0, got fps={fps}, size={size}")
        self.fps, self.size, self.dtype = float(fps), int(size), dtype

    @property
    def seconds_per_frame(self) -> float:
        return 1.0 / self.fps

    def compute(self, media: MediaFile, t0: float, seconds: float) -> np.ndarray:
        times = t0 + np.arange(self.num_frames(seconds)) / self.fps
        return resize_square(media.frames_at(times), self.size).numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "fps": self.fps, "size": self.size, "encoder": "pixels", "range": [-1.0, 1.0]}


class VideoVAELatents(VideoPixels):
    """SD-VAE latents of each frame: (F, 4, size/8, size/8), scaled by `scaling_factor`.

    Frames are encoded by a diffusers AutoencoderKL loaded from a local directory (`vae_path`, as written by
    `save_pretrained`) or a weights name (`sd-vae-ft-mse`), recorded as given so that a store names a portable
    source. The posterior mean is stored (deterministic) unless `sample_posterior` is set.
    """

    layout = "F C h w"

    def __init__(
        self,
        fps: float,
        size: int,
        vae_path: str,
        scaling_factor: float | None = None,
        batch_size: int = 64,
        sample_posterior: bool = False,
        device: str = "auto",
        dtype: str = "float16",
    ):
        super().__init__(fps, size, dtype)
        if not vae_path:
            raise ValueError(
                "vae_path is required for SD-VAE video latents: pass vae_path=<a diffusers "
                "AutoencoderKL directory, as written by save_pretrained, or sd-vae-ft-mse>"
            )
        self.vae_path = str(vae_path)
        self.scaling_factor = scaling_factor
        self.batch_size = batch_size
        self.sample_posterior = sample_posterior
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self._vae = None

    def _load(self):
        if self._vae is None:
            self._vae = load_vae(self.vae_path, self.device, "vae_path")
            if self.scaling_factor is None:
                self.scaling_factor = float(self._vae.config.scaling_factor)
        return self._vae

    @torch.no_grad()
    def finalize(self, batch: np.ndarray) -> np.ndarray:
        vae = self._load()
        n, f = batch.shape[:2]
        frames = torch.from_numpy(batch.astype(np.float32)).flatten(0, 1)  # (N, F, 3, H, W) -> (N*F, 3, H, W)
        out = []
        for chunk in frames.split(self.batch_size):
            dist = vae.encode(chunk.to(self.device)).latent_dist
            z = dist.sample() if self.sample_posterior else dist.mean
            out.append((z * self.scaling_factor).float().cpu())
        latents = torch.cat(out).unflatten(0, (n, f))  # (N*F, c, h, w) -> (N, F, c, h, w)
        return latents.numpy().astype(self.dtype)

    def describe(self) -> dict[str, Any]:
        self._load()
        return {
            **super().describe(),
            "encoder": "AutoencoderKL",
            "vae_path": self.vae_path,
            "scaling_factor": self.scaling_factor,
            "sample_posterior": self.sample_posterior,
            "range": None,
        }


class AudioLogMel(Representation):
    """Log-mel spectrogram normalised to [-1, 1]: (n_mels, T).

    `value = 2 * (clip(dB, min_db, max_db) - min_db) / (max_db - min_db) - 1` with dB = 10 log10(power mel);
    the fixed range (not per-clip normalisation) keeps loudness comparable across clips and invertible.
    """

    modality = "audio"
    time_axis = 1
    layout = "C T"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        n_fft: int = 512,
        hop_length: int = 256,
        fmin: float = 0.0,
        fmax: float | None = None,
        min_db: float = -80.0,
        max_db: float = 20.0,
        dtype: str = "float16",
    ):
        if hop_length <= 0 or n_fft <= 0 or n_mels <= 0:
            raise ValueError("AudioLogMel needs positive n_mels, n_fft and hop_length")
        if not min_db < max_db:
            raise ValueError(f"AudioLogMel needs min_db < max_db, got {min_db} >= {max_db}")
        self.sample_rate, self.n_mels, self.n_fft, self.hop_length = sample_rate, n_mels, n_fft, hop_length
        self.fmin, self.fmax = fmin, (fmax if fmax is not None else sample_rate / 2)
        self.min_db, self.max_db, self.dtype = min_db, max_db, dtype

    MEL_KEYS = ("sample_rate", "n_mels", "n_fft", "hop_length", "fmin", "fmax", "min_db", "max_db")

    @classmethod
    def from_metadata(cls, meta: dict) -> AudioLogMel:
        """The mel a store's representation metadata describes (what decoding inverts)."""
        return cls(**{k: meta[k] for k in cls.MEL_KEYS})

    @property
    def seconds_per_frame(self) -> float:
        return self.hop_length / self.sample_rate

    @property
    def context_seconds(self) -> float:
        return stft_context(self.n_fft, self.sample_rate)

    def mel_power(self, wav: np.ndarray, center: bool = True) -> np.ndarray:
        return librosa.feature.melspectrogram(
            y=wav,
            sr=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            power=2.0,
            center=center,
        )

    def normalise(self, power: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(np.maximum(power, 10.0 ** (self.min_db / 10.0)))
        return 2.0 * (np.clip(db, self.min_db, self.max_db) - self.min_db) / (self.max_db - self.min_db) - 1.0

    def denormalise(self, value: np.ndarray) -> np.ndarray:
        """Inverse of `normalise` (up to the clipping): normalised values -> power mel."""
        db = (np.asarray(value, dtype=np.float64) + 1.0) / 2.0 * (self.max_db - self.min_db) + self.min_db
        return 10.0 ** (db / 10.0)

    def compute(self, media: MediaFile, t0: float, seconds: float) -> np.ndarray:
        wav = padded_audio(media, self.sample_rate, self.n_fft, t0, seconds)
        power = self.mel_power(wav, center=False)[:, : self.num_frames(seconds)]
        return self.normalise(power).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "min_db": self.min_db,
            "max_db": self.max_db,
            "range": [-1.0, 1.0],
            "center": True,
            "stft_context": "signal",
        }


class AudioWaveform(Representation):
    """Mono waveform: (1, samples)."""

    modality = "audio"
    time_axis = 1
    layout = "C T"

    def __init__(self, sample_rate: int = 16000, dtype: str = "float32"):
        self.sample_rate, self.dtype = sample_rate, dtype

    @property
    def seconds_per_frame(self) -> float:
        return 1.0 / self.sample_rate

    def compute(self, media: MediaFile, t0: float, seconds: float) -> np.ndarray:
        return media.audio(self.sample_rate, t0, seconds)[None, : self.num_frames(seconds)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sample_rate": self.sample_rate, "range": [-1.0, 1.0]}


class AudioLDMLatents(Representation):
    """AudioLDM VAE latents of AudioLDM's log-mel: (C, T/r, n_mels/r), r the VAE's downsampling (4).

    The mel follows AudioLDM's features (16 kHz, n_fft = win = 1024, hop 160, 64 Slaney mel bins 0-8 kHz,
    magnitude, `log(clamp(mel, 1e-5))`), computed with librosa `center=True` so that mel frame k is centred at
    `t0 + k * hop / sample_rate` like every other audio representation (AudioLDM's own padding puts it half a
    hop, 5 ms, later). The encoder is the `vae/` of a local AudioLDM pipeline directory or of `audioldm-m-full`
    (or an AutoencoderKL directory itself); its posterior mean times its scaling factor is stored.
    """

    modality = "audio"
    time_axis = 1
    layout = "C T M"

    def __init__(
        self,
        vae_path: str | None,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_fft: int = 1024,
        hop_length: int = 160,
        fmin: float = 0.0,
        fmax: float = 8000.0,
        batch_size: int = 32,
        device: str = "auto",
        dtype: str = "float16",
    ):
        if not vae_path:
            raise ValueError(
                "vae_path is required for AudioLDM latents: pass audioldm_path=<a local AudioLDM "
                "pipeline directory (with vae/), or audioldm-m-full>"
            )
        from avgen.weights import resolve

        # the resolved folder is what the store records: decoding finds the vocoder beside its vae/
        path = resolve(vae_path)
        path = path / "vae" if (path / "vae" / "config.json").is_file() else path
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{vae_path}: expected an AudioLDM pipeline directory with vae/config.json, "
                "or an AutoencoderKL directory with config.json"
            )
        import json

        config = json.loads((path / "config.json").read_text())
        self.downsample = 2 ** (len(config["block_out_channels"]) - 1)
        self.scaling_factor = float(config.get("scaling_factor", 1.0))
        self.vae_path, self.sample_rate, self.n_mels, self.n_fft = str(path), sample_rate, n_mels, n_fft
        self.hop_length, self.fmin, self.fmax, self.batch_size = hop_length, fmin, fmax, batch_size
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.dtype = dtype
        self._vae = None

    @property
    def seconds_per_frame(self) -> float:
        return self.downsample * self.hop_length / self.sample_rate

    @property
    def context_seconds(self) -> float:
        return stft_context(self.n_fft, self.sample_rate)

    def log_mel(self, wav: np.ndarray, center: bool = True) -> np.ndarray:
        """AudioLDM's log-magnitude mel: (n_mels, frames)."""
        mel = librosa.feature.melspectrogram(
            y=wav,
            sr=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            power=1.0,
            center=center,
        )
        return np.log(np.maximum(mel, 1e-5))

    def compute(self, media: MediaFile, t0: float, seconds: float) -> np.ndarray:
        wav = padded_audio(media, self.sample_rate, self.n_fft, t0, seconds)
        frames = self.num_frames(seconds) * self.downsample
        # (n_mels, T) -> (T, n_mels), AudioLDM's layout
        return self.log_mel(wav, center=False)[:, :frames].T.astype(np.float32)

    @torch.no_grad()
    def finalize(self, batch: np.ndarray) -> np.ndarray:
        if self._vae is None:
            self._vae = load_vae(self.vae_path, self.device, "audioldm_path (vae/)")
        mel = torch.from_numpy(batch.astype(np.float32))[:, None]  # (N, T, M) -> (N, 1, T, M)
        out = [
            self._vae.encode(chunk.to(self.device)).latent_dist.mean.float().cpu() * self.scaling_factor
            for chunk in mel.split(self.batch_size)
        ]
        return torch.cat(out).numpy().astype(self.dtype)  # (N, C, T/r, M/r)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "encoder": "AudioLDM AutoencoderKL",
            "vae_path": self.vae_path,
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "downsample": self.downsample,
            "scaling_factor": self.scaling_factor,
            "range": None,
            "stft_context": "signal",
        }
