"""Media the tests generate: mp4s with a click at a known time and a flash at a known frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from avgen.data.media import write_mp4


def av_clip(
    path: Path,
    fps: float = 25,
    frames: int = 75,
    height: int = 48,
    width: int = 64,
    sample_rate: int = 16000,
    channels: int = 1,
    audio_seconds: float | None = None,
    click_at: float | None = None,
    flash_frames: tuple[int, ...] = (),
    audio: bool = True,
) -> Path:
    """Dark frames (white at `flash_frames`) and quiet noise (one click at `click_at` s); returns `path`."""
    video = np.full((frames, height, width, 3), 20, dtype=np.uint8)
    for k in flash_frames:
        video[k] = 235
    wav = None
    if audio:
        seconds = audio_seconds if audio_seconds is not None else frames / fps
        n = int(round(seconds * sample_rate))
        rng = np.random.default_rng(0)
        wav = rng.normal(0, 1e-3, (channels, n)).astype(np.float32)
        if click_at is not None:
            k = int(round(click_at * sample_rate))
            burst = int(0.01 * sample_rate)  # a 10 ms burst of loud noise
            wav[:, k : k + burst] += rng.uniform(-0.8, 0.8, (channels, min(burst, n - k)))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, video, int(fps), wav, sample_rate)
    return path


def audio_only(path: Path, sample_rate: int = 16000, seconds: float = 3.0) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=sample_rate)
        s.layout = "mono"
        wav = np.zeros((1, int(seconds * sample_rate)), np.float32)
        for start in range(0, wav.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wav[:, start : start + 1024]), format="flt", layout="mono"
            )
            f.sample_rate, f.pts = sample_rate, start
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def tiny_vae(
    path: Path, in_channels: int = 3, latent_channels: int = 4, levels: int = 2, scaling_factor: float = 0.18215
) -> Path:
    """A random diffusers AutoencoderKL built from config (downsampling 2**(levels-1)), saved to `path`."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=in_channels,
        out_channels=in_channels,
        latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=(8,) * levels,
        layers_per_block=1,
        norm_num_groups=4,
        scaling_factor=scaling_factor,
    )
    vae.save_pretrained(path)
    return path
