"""Exact, weight-free metrics for the synthetic dataset (`avgen.data.synthetic`).

Both modalities are *detected* from the media (never read from the ground truth), so the same code scores
real test pairs and generated samples:

- visual events: wall bounces = turning points of the ball's horizontal centroid, found by
  `scipy.signal.find_peaks` with a prominence threshold so that flicker in generated video does not count;
- audio onsets: peaks of the positive spectral flux of the log-mel (librosa `onset_strength` with
  `center=False`: our mel frames are already centred, and librosa's centring shift assumes n_fft=2048 at
  the given hop, which would move onsets late);
- colour class: nearest class colour to the ball's mean colour; pitch class: nearest class pitch (in
  log-frequency) to the dominant mel band.

`temporal_alignment` is the F1 of one-to-one matching of onsets to visual events within +-1 video frame,
pooled over clips (noisy audio firing many onsets lowers precision, so it cannot inflate the score);
`semantic_agreement` is the fraction of clips whose pitch class equals the colour class. Both are always
reported beside the same metric with the audio shuffled among the evaluated clips (`*_shuffled`): chance level
for those clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import find_peaks

from avgen.data.media import MediaFile
from avgen.data.representations import AudioLogMel
from avgen.data.synthetic import CLASS_COLOURS, class_pitches


@dataclass
class SyntheticProbe:
    """Detectors configured with the representation's rates (from store metadata, never from shapes)."""

    video_fps: float
    sample_rate: int
    hop_length: int
    n_mels: int
    n_fft: int = 2048
    fmin: float = 0.0
    fmax: float | None = None
    min_db: float = -40.0           # dB range of the normalised mel (AudioLogMel)
    max_db: float = 25.0
    num_classes: int = 4
    prominence: float = 0.15        # turning point must move the centroid this fraction of the width
    onset_min_db: float = 2.0       # mean per-band rise (dB) an onset must exceed
    onset_relative: float = 0.3     # ... and this fraction of the clip's strongest onset
    tolerance_frames: float = 1.0   # match window, in video frames

    @classmethod
    def from_metadata(cls, video_meta: dict, audio_meta: dict, num_classes: int, **overrides) -> "SyntheticProbe":
        return cls(video_fps=1.0 / video_meta["seconds_per_frame"], sample_rate=audio_meta["sample_rate"],
                   hop_length=audio_meta["hop_length"], n_mels=audio_meta["n_mels"],
                   n_fft=audio_meta["n_fft"], fmin=audio_meta["fmin"],
                   fmax=audio_meta["fmax"], min_db=audio_meta["min_db"], max_db=audio_meta["max_db"],
                   num_classes=num_classes, **overrides)

    # ------------------------------------------------------------------------------------------ video
    @staticmethod
    def _foreground(frames: np.ndarray) -> np.ndarray:
        """Per-pixel ball weight: (F, H, W, 3) in [0, 1] -> (F, H, W), brightness above the frame's median."""
        bright = frames.max(axis=-1)
        return np.clip(bright - np.median(bright, axis=(1, 2), keepdims=True), 0.0, None) ** 2

    def visual_events(self, frames: np.ndarray) -> np.ndarray:
        """Bounce times (s) from (F, H, W, 3) frames in [0, 1]."""
        w = self._foreground(frames)
        xs = (np.arange(frames.shape[2]) + 0.5) / frames.shape[2]
        mass = w.sum(axis=(1, 2))
        cx = (w.sum(axis=1) * xs).sum(axis=1) / np.maximum(mass, 1e-8)  # (F,) horizontal centroid
        # Continue the motion linearly past both ends, so that a bounce one frame from an edge keeps its
        # prominence (a turning point's prominence is limited by the shorter side).
        pad = 3
        steps = np.arange(1, pad + 1)
        head = cx[0] - (cx[1] - cx[0]) * steps[::-1]
        tail = cx[-1] + (cx[-1] - cx[-2]) * steps
        padded = np.concatenate([head, cx, tail])
        peaks = [find_peaks(sign * padded, prominence=self.prominence)[0] - pad for sign in (1.0, -1.0)]
        return np.sort(np.concatenate(peaks)).astype(np.float64) / self.video_fps

    def colour_class(self, frames: np.ndarray) -> int:
        w = self._foreground(frames)[..., None]
        colour = (frames * w).sum(axis=(0, 1, 2)) / max(float(w.sum()), 1e-8)
        colour = colour / max(float(colour.max()), 1e-8)
        return int(np.argmin(((CLASS_COLOURS[: self.num_classes] - colour) ** 2).sum(axis=1)))

    # ------------------------------------------------------------------------------------------ audio
    def _db(self, mel: np.ndarray) -> np.ndarray:
        return (np.asarray(mel, dtype=np.float64) + 1.0) / 2.0 * (self.max_db - self.min_db) + self.min_db

    def audio_onsets(self, mel: np.ndarray) -> np.ndarray:
        """Onset times (s) from a normalised log-mel (n_mels, T) with centred frames."""
        env = librosa.onset.onset_strength(S=self._db(mel), center=False, lag=1, max_size=1, aggregate=np.mean)
        if env.size == 0 or env.max() <= 0:
            return np.zeros(0)
        height = max(self.onset_min_db, self.onset_relative * float(env.max()))
        peaks, _ = find_peaks(env, height=height, distance=2)
        return peaks * self.hop_length / self.sample_rate

    def pitch_class(self, mel: np.ndarray) -> int:
        power = 10.0 ** (self._db(mel) / 10.0)               # (n_mels, T)
        band = int(np.argmax(power.mean(axis=1)))
        centres = librosa.mel_frequencies(self.n_mels + 2, fmin=self.fmin, fmax=self.fmax or self.sample_rate / 2)[1:-1]
        pitches = class_pitches(self.num_classes)
        return int(np.argmin(np.abs(np.log(pitches) - np.log(max(centres[band], 1.0)))))

    # ------------------------------------------------------------------------------------- matching
    def match(self, onsets: np.ndarray, events: np.ndarray, duration: float) -> tuple[int, int, int]:
        """(matched, |onsets|, |events|) inside the clip minus its first and last video frame.

        Turning points cannot be seen at the first/last frame, so neither set counts there.
        """
        lo, hi = 1.0 / self.video_fps - 1e-9, duration - 1.0 / self.video_fps + 1e-9
        a = onsets[(onsets >= lo) & (onsets <= hi)]
        v = events[(events >= lo) & (events <= hi)]
        if a.size == 0 or v.size == 0:
            return 0, a.size, v.size
        dist = np.abs(a[:, None] - v[None, :])
        tol = self.tolerance_frames / self.video_fps + 1e-9
        cost = np.where(dist <= tol, dist, 1e6)
        rows, cols = linear_sum_assignment(cost)
        return int((cost[rows, cols] <= tol).sum()), a.size, v.size


def pair_from_file(probe: SyntheticProbe, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode an mp4 into what the probe scores: frames (F, H, W, 3) in [0, 1] at the probe's fps, and the
    normalised log-mel with the probe's settings (so mp4s written by samplers score like stored arrays)."""
    media = MediaFile(path)
    n = int(np.floor(media.info.duration * probe.video_fps + 1e-6))
    frames = media.frames_at(np.arange(n) / probe.video_fps).astype(np.float32) / 255.0
    mel = AudioLogMel(probe.sample_rate, probe.n_mels, probe.n_fft, probe.hop_length, probe.fmin, probe.fmax,
                      probe.min_db, probe.max_db).compute(media, 0.0, n / probe.video_fps)
    return frames, mel


def to_frames_01(video: np.ndarray) -> np.ndarray:
    """Store layout (F, 3, H, W) in [-1, 1] -> (F, H, W, 3) in [0, 1]."""
    return np.clip((np.asarray(video, dtype=np.float32).transpose(0, 2, 3, 1) + 1.0) / 2.0, 0.0, 1.0)


def score_pairs(probe: SyntheticProbe, videos: list[np.ndarray], mels: list[np.ndarray]) -> dict[str, float]:
    """Pooled temporal F1 and semantic agreement of paired (F, H, W, 3) [0,1] frames and normalised mels."""
    if len(videos) != len(mels) or not videos:
        raise ValueError(f"need equally many videos and mels (>0), got {len(videos)} and {len(mels)}")
    matched = n_onsets = n_events = agree = 0
    for frames, mel in zip(videos, mels):
        duration = frames.shape[0] / probe.video_fps
        m, a, v = probe.match(probe.audio_onsets(mel), probe.visual_events(frames), duration)
        matched, n_onsets, n_events = matched + m, n_onsets + a, n_events + v
        agree += probe.colour_class(frames) == probe.pitch_class(mel)
    denom = n_onsets + n_events
    return {
        "temporal_alignment": 2.0 * matched / denom if denom else 0.0,
        "semantic_agreement": agree / len(videos),
        "onsets_per_clip": n_onsets / len(videos),
        "events_per_clip": n_events / len(videos),
    }


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A seeded permutation with no fixed point (n >= 2): every clip gets another clip's audio."""
    if n < 2:
        raise ValueError("shuffling audio among clips needs at least 2 clips")
    rng = np.random.default_rng(seed)
    while True:  # rejection sampling: a random permutation is a derangement with probability ~1/e
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def synthetic_metrics(probe: SyntheticProbe, videos: list[np.ndarray], mels: list[np.ndarray],
                      seed: int = 0) -> dict[str, float]:
    """The metrics on the pairs as given and with audio shuffled among them (`*_shuffled`)."""
    real = score_pairs(probe, videos, mels)
    perm = derangement(len(mels), seed)
    shuffled = score_pairs(probe, videos, [mels[i] for i in perm])
    return {
        "temporal_alignment": real["temporal_alignment"],
        "semantic_agreement": real["semantic_agreement"],
        "temporal_alignment_shuffled": shuffled["temporal_alignment"],
        "semantic_agreement_shuffled": shuffled["semantic_agreement"],
        "onsets_per_clip": real["onsets_per_clip"],
        "events_per_clip": real["events_per_clip"],
        "num_clips": len(videos),
    }
