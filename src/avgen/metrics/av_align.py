"""AV-Align (Yariv et al. 2023; docs/metrics.md#av-align) in two modes, each under its own name.

`av_align` is the published metric as its reference script (TempoTokens `av_align.py`) computes it:
- video peaks: the mean Farneback optical-flow magnitude between consecutive grey frames (OpenCV, the
  script's parameters), a trajectory of F values whose first entry repeats the first transition, and its
  strict local maxima at index i -> time i / fps; no padding, no threshold;
- audio peaks: librosa onsets of the audio resampled to 22.05 kHz (what `librosa.load` gives by default);
- IoU: an audio peak counts when any video peak lies strictly within one frame (|v - a| < 1 / fps), so
  several onsets may count against one video peak (scores above 1 are possible); IoU = hits / (|A| + |V| -
  hits); the metric is the mean over clips. Where a clip has no peak at all the script divides by zero: here
  that clip scores 0.

`av_align_one_to_one` is the variant avgen reported as `av_align` before: one-to-one greedy matching in a
closed window (`evaluate.av_align.window`, default one frame), flow padded so the first and last transitions
may peak, peaks below 10% of the clip's largest motion dropped, onsets at the native sample rate. It never
exceeds 1, but it is not comparable with published AV-Align numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.signal import argrelmax
from torchmetrics import Metric

REFERENCE_SAMPLE_RATE = 22050  # librosa.load's default rate, at which the reference script detects onsets


@contextmanager
def reproducible_flow() -> Iterator[None]:
    """OpenCV's optimised kernels off while flow is computed: with them, Farneback's output for one pair of
    frames varies in its last digits from process to process (measured: 3 different trajectories of one clip
    in 6 processes), which now and then moves a strict local maximum and with it a clip's score. Off, every
    process computes the same values, as fast on these sizes; they differ from the optimised ones by ~1e-7."""
    import cv2

    optimised = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        yield
    finally:
        cv2.setUseOptimized(optimised)


# ------------------------------------------------------------------------------------ the reference mode
def reference_motion(frames: np.ndarray) -> np.ndarray:
    """The reference's flow trajectory: frames (F, H, W, 3) uint8 RGB -> (F,) mean flow magnitudes, entry 0
    the first transition's (repeated), entry i >= 1 the transition i-1 -> i."""
    import cv2

    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]

    def magnitude(a: np.ndarray, b: np.ndarray) -> float:
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0]

    if len(gray) < 2:
        return np.zeros(len(gray))
    with reproducible_flow():
        return np.array([magnitude(gray[0], gray[1])] + [magnitude(gray[i - 1], gray[i]) for i in range(1, len(gray))])


def reference_video_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of the strict local maxima of `reference_motion`: index i -> i / fps."""
    m = reference_motion(frames)
    i = np.arange(1, len(m) - 1)
    return i[(m[i - 1] < m[i]) & (m[i] > m[i + 1])] / fps


def reference_audio_peaks(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times (s) as the reference detects them: the audio at 22.05 kHz, librosa's onset envelope."""
    y = np.asarray(wav, dtype=np.float32).reshape(-1)
    if sample_rate != REFERENCE_SAMPLE_RATE:  # librosa.load's own resampling (soxr_hq)
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=REFERENCE_SAMPLE_RATE)
    envelope = librosa.onset.onset_strength(y=y, sr=REFERENCE_SAMPLE_RATE)
    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=REFERENCE_SAMPLE_RATE)
    return librosa.frames_to_time(frames, sr=REFERENCE_SAMPLE_RATE)


def reference_iou(audio_peaks: np.ndarray, video_peaks: np.ndarray, fps: float) -> float:
    """Audio peaks with any video peak strictly within one frame, over |A| + |V| - hits (many-to-one)."""
    v = np.asarray(video_peaks, dtype=np.float64)
    hits = sum(bool(np.any((v - 1 / fps < a) & (a < v + 1 / fps))) for a in np.asarray(audio_peaks))
    union = len(audio_peaks) + len(video_peaks) - hits
    return hits / union if union else 0.0


def read_media(video_path: str | Path, audio_path: str | Path | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """(frames (F, H, W, 3) uint8 RGB, fps, mono audio at 22.05 kHz) as the reference script reads them:
    OpenCV decodes the video (its frame rate from the container), `librosa.load` the audio: the `.wav` beside
    the mp4 (the script's convention) or, without one, the mp4's own audio track."""
    import cv2

    video_path = Path(video_path)
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        raise ValueError(f"{video_path}: OpenCV cannot open this video")
    fps, frames = capture.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise ValueError(f"{video_path}: no frame could be decoded")
    wav = Path(audio_path) if audio_path is not None else video_path.with_suffix(".wav")
    if wav.is_file():
        audio, _ = librosa.load(wav)
    else:  # the whole track from its own first sample, mono, resampled as librosa.load would
        from avgen.data.media import MediaFile

        audio = MediaFile(video_path).track(REFERENCE_SAMPLE_RATE)
    return np.stack(frames), fps, audio


def av_align_files(videos: Sequence[str | Path], audios: Sequence[str | Path | None] | None = None) -> list[float]:
    """AV-Align of media files exactly as the reference script scores them: one IoU per file (the metric is
    their mean). `audios`: a wav per video (default: the `.wav` beside it, else its audio track)."""
    scores = []
    for video, audio in zip(videos, audios or [None] * len(videos)):
        frames, fps, wav = read_media(video, audio)
        scores.append(
            reference_iou(reference_audio_peaks(wav, REFERENCE_SAMPLE_RATE), reference_video_peaks(frames, fps), fps)
        )
    return scores


# ------------------------------------------------------------------------------ the one-to-one variant
def flow_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of the peaks of mean optical-flow magnitude: frames (F, H, W, 3) uint8 -> (P,)."""
    import cv2

    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    with reproducible_flow():
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


MODES = ("reference", "one_to_one")


class AVAlign(Metric):
    """The mean AV-Align over clips (`mode`: reference or one_to_one), sums all-reduced under DDP."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, fps: float, sample_rate: int, window: float | None = None, mode: str = "reference", **kwargs):
        # every rank scores every sample (evaluation/sharding.py gathers them first): nothing to gather here
        super().__init__(**{"sync_on_compute": False, **kwargs})
        if mode not in MODES:
            raise ValueError(f"AV-Align mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.fps, self.sample_rate, self.mode = fps, sample_rate, mode
        self.window = 1.0 / fps if window is None else window
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, videos: Sequence[np.ndarray], audios: Sequence[np.ndarray]) -> None:
        """videos: (F, H, W, 3) uint8 each; audios: mono waveforms at `sample_rate`."""
        for video, audio in zip(videos, audios):
            audio = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else audio
            self.total += clip_score(np.asarray(video), audio, self.fps, self.sample_rate, self.mode, self.window)
            self.count += 1

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


def peaks(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int, mode: str) -> tuple:
    """(audio peak times, video peak times) of one clip in `mode`."""
    if mode == "reference":
        return reference_audio_peaks(audio, sample_rate), reference_video_peaks(video, fps)
    return onset_times(audio, sample_rate), flow_peaks(video, fps)


def match(audio_peaks: np.ndarray, video_peaks: np.ndarray, fps: float, mode: str, window: float | None) -> float:
    """One clip's IoU from its peaks in `mode` (the window: the one-to-one variant's; default one frame)."""
    if mode == "reference":
        return reference_iou(audio_peaks, video_peaks, fps)
    return av_align_iou(audio_peaks, video_peaks, 1.0 / fps if window is None else window)


def clip_score(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int, mode: str, window=None) -> float:
    return match(*peaks(video, audio, fps, sample_rate, mode), fps, mode, window)
