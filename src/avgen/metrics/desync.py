"""DeSync (MMAudio, Cheng et al. 2025; av-benchmark): the audio-visual offset Synchformer predicts, in seconds.

As av_bench/evaluate.py computes it: each clip's video and audio are cut into 0.64 s segments (step 0.32 s);
the sync head classifies the offset of the first 14 segments (4.8 s) and of the last 14 into 21 classes
from -2.0 to +2.0 s; DeSync = the mean over clips and both windows of |offset of the argmax class|. A clip of
exactly 4.8 s has one window, counted twice (as the reference does); shorter clips cannot be scored (the sync
head's position embedding holds exactly 14 segments; av-benchmark's loaders drop them).
"""

from __future__ import annotations

import numpy as np
import torch

from avgen.models import synchformer as sf

WINDOW_SECONDS = (sf.NUM_SEGMENTS - 1) * sf.SEGMENT_STEP_FRAMES / sf.VIDEO_FPS + sf.SEGMENT_FRAMES / sf.VIDEO_FPS


def offset_grid(num_classes: int = sf.NUM_OFFSETS, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Class -> offset in seconds (synchformer.make_class_grid(-2, 2, 21): -2.0, -1.8, ..., 2.0)."""
    return np.linspace(low, high, num_classes)


def predicted_offsets(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, 21) logits -> (N,) offsets in seconds of the argmax class (evaluate.py: sync_grid[argmax])."""
    return offset_grid()[np.asarray(torch.as_tensor(logits).argmax(dim=-1))]


def clip_desync(first: torch.Tensor | np.ndarray, last: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per clip: the mean of |offset| over its first and last windows' (N, 21) logits (evaluate.py appends both
    absolute offsets of every clip to one list)."""
    return (np.abs(predicted_offsets(first)) + np.abs(predicted_offsets(last))) / 2


def desync(per_clip: np.ndarray) -> float:
    """DeSync = mean over clips (evaluate.py: np.mean of all absolute offsets, two per clip)."""
    return float(np.mean(per_clip))


def num_segments(length: int, size: int, step: int) -> int:
    """Segments of `size` every `step` in `length` (extract_video.py, extract.py: (t - size) // step + 1)."""
    return max(0, (length - size) // step + 1)


def first_and_last(x: torch.Tensor, window: int = sf.NUM_SEGMENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, ...) -> the first and last `window` segments (evaluate.py: [:, :14] and [:, -14:])."""
    return x[:, :window], x[:, -window:]


def check_seconds(seconds: float, what: str) -> None:
    """Stop before any sampling when the clips DeSync would score are shorter than its 4.8 s window."""
    if seconds + 1e-6 < WINDOW_SECONDS:
        raise ValueError(
            f"desync: {what} last {seconds:.2f} s; DeSync needs at least {WINDOW_SECONDS:.1f} s "
            "(or drop desync from evaluate.metrics)"
        )


def clip_inputs(
    frames: np.ndarray, wave: np.ndarray, fps: float, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One clip ((T, 3, H, W) in [0, 1], mono waveform) -> its (S, 16, 3, 224, 224) video segments and
    (S, 128, 66) log mel segments, both over the clip's common duration as av-benchmark reads it: the video at
    25 fps as uint8 RGB, the audio at 16 kHz, cut to int(25 d) frames and int(16000 d) samples."""
    from avgen.metrics.extractors import resample

    duration = min(len(frames) / fps, len(wave) / sample_rate)
    audio = torch.from_numpy(resample(torch.as_tensor(wave), sample_rate, sf.SAMPLE_RATE)).float()
    audio = audio[: int(sf.SAMPLE_RATE * duration + 1e-6)]  # + 1e-6: d = T / fps exactly, not below
    idx = sf.frame_indices(len(frames), fps, duration)
    count = min(
        num_segments(len(idx), sf.SEGMENT_FRAMES, sf.SEGMENT_STEP_FRAMES),
        num_segments(len(audio), sf.SEGMENT_SAMPLES, sf.SEGMENT_STEP_SAMPLES),
    )
    if count < sf.NUM_SEGMENTS:
        raise ValueError(
            f"desync: clips of {duration:.2f} s; DeSync needs at least {WINDOW_SECONDS:.1f} s of video and audio "
            f"({sf.NUM_SEGMENTS} segments of 0.64 s): longer samples (evaluate.length_factor) or drop desync "
            "from evaluate.metrics"
        )
    pixels = np.floor(np.clip(np.asarray(frames)[idx.numpy()], 0, 1) * 255 + 0.5)  # the uint8 frames' values
    pixels = torch.from_numpy(pixels).float()
    video = sf.segments(sf.resize_center_crop(pixels), sf.SEGMENT_FRAMES, sf.SEGMENT_STEP_FRAMES)[:count]
    mels = sf.log_mel(sf.segments(audio, sf.SEGMENT_SAMPLES, sf.SEGMENT_STEP_SAMPLES)[:count])
    return video, mels


class DeSync:
    """Per-clip DeSync of (video, audio) pairs with a Synchformer (models/synchformer.py)."""

    def __init__(self, model: sf.Synchformer, segment_batch: int = 8):
        self.model, self.segment_batch = model.eval(), segment_batch

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def features(self, video: torch.Tensor, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, 16, 3, 224, 224) and (S, 128, 66) -> (1, S, 8, D) and (1, S, 6, D), a few segments at a time."""
        v = [
            self.model.video_features(c[None].to(self.device)) for c in video.split(self.segment_batch)
        ]  # (1, s, 8, D) each
        a = [self.model.audio_features(c[None].to(self.device)) for c in mels.split(self.segment_batch)]
        return torch.cat(v, dim=1), torch.cat(a, dim=1)

    @torch.no_grad()
    def per_clip(self, videos: list, audios: list, fps: float, sample_rate: int) -> np.ndarray:
        """(N,) mean |offset| of each clip's first and last 4.8 s."""
        out = []
        for frames, wave in zip(videos, audios, strict=True):
            v, a = self.features(*clip_inputs(frames, wave, fps, sample_rate))
            (v_first, v_last), (a_first, a_last) = first_and_last(v), first_and_last(a)
            first = self.model.offset_logits(v_first, a_first).float().cpu()
            last = self.model.offset_logits(v_last, a_last).float().cpu()
            out.append(clip_desync(first, last)[0])
        return np.asarray(out)
