"""AV-Align (Yariv et al. 2023; docs/metrics.md), as a torchmetrics Metric (sums all-reduced under DDP).

Audio peaks are librosa onsets; video peaks are local maxima of the mean Farneback optical-flow magnitude
between consecutive frames (OpenCV). An audio peak matches when a video peak lies within `window` seconds
(default one frame, 1/fps); a clip scores IoU = matched / (|A| + |V| - matched); the metric is the mean
over clips. MMDisCo widens the window to the 96 ms onset interval at 8 fps (`window=0.096`) so that one video
peak cannot match several onsets, which would let the score exceed 1; matches here are one-to-one anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np
import torch
from scipy.signal import argrelmax
from torchmetrics import Metric


def flow_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of the peaks of mean optical-flow magnitude: frames (F, H, W, 3) uint8 -> (P,)."""
    import cv2

    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    motion = np.array(
        [
            np.linalg.norm(cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0), axis=-1).mean()
            for a, b in zip(gray[:-1], gray[1:])
        ]
    )
    if len(motion) < 3:
        return np.zeros(0)
    peaks = argrelmax(np.pad(motion, 1), order=1)[0] - 1  # padding lets the first and last transitions peak
    peaks = peaks[motion[peaks] > 0.1 * motion.max()] if motion.max() > 0 else peaks[:0]
    return (peaks + 1) / fps  # transition k -> k+1 happens by frame k+1


def onset_times(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    return librosa.onset.onset_detect(y=np.asarray(wav, dtype=np.float32).reshape(-1), sr=sample_rate, units="time")


def av_align_iou(audio_peaks: np.ndarray, video_peaks: np.ndarray, window: float) -> float:
    """matched / (|A| + |V| - matched), each video peak matching at most one audio peak."""
    free = list(video_peaks)
    matched = 0
    for a in audio_peaks:
        close = [i for i, v in enumerate(free) if abs(v - a) <= window + 1e-9]
        if close:
            free.pop(min(close, key=lambda i: abs(free[i] - a)))
            matched += 1
    union = len(audio_peaks) + len(video_peaks) - matched
    return matched / union if union else 0.0


class AVAlign(Metric):
    full_state_update = False
    higher_is_better = True

    def __init__(self, fps: float, sample_rate: int, window: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fps, self.sample_rate = fps, sample_rate
        self.window = 1.0 / fps if window is None else window
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, videos: Sequence[np.ndarray], audios: Sequence[np.ndarray]) -> None:
        """videos: (F, H, W, 3) uint8 each; audios: mono waveforms at `sample_rate`."""
        for video, audio in zip(videos, audios):
            audio = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else audio
            iou = av_align_iou(
                onset_times(audio, self.sample_rate), flow_peaks(np.asarray(video), self.fps), self.window
            )
            self.total += iou
            self.count += 1

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()
