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
from avgen.metrics.stats import bootstrap_interval, derangements, safe_div, sums


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
    min_db: float = -40.0  # dB range of the normalised mel (AudioLogMel)
    max_db: float = 25.0
    num_classes: int = 4
    prominence: float = 0.15  # turning point must move the centroid this fraction of the width
    onset_min_db: float = 2.0  # mean per-band rise (dB) an onset must exceed
    onset_relative: float = 0.3  # ... and this fraction of the clip's strongest onset
    tolerance_frames: float = 1.0  # match window, in video frames

    @classmethod
    def from_metadata(cls, video_meta: dict, audio_meta: dict, num_classes: int, **overrides) -> SyntheticProbe:
        return cls(
            video_fps=1.0 / video_meta["seconds_per_frame"],
            sample_rate=audio_meta["sample_rate"],
            hop_length=audio_meta["hop_length"],
            n_mels=audio_meta["n_mels"],
            n_fft=audio_meta["n_fft"],
            fmin=audio_meta["fmin"],
            fmax=audio_meta["fmax"],
            min_db=audio_meta["min_db"],
            max_db=audio_meta["max_db"],
            num_classes=num_classes,
            **overrides,
        )

    # ------------------------------------------------------------------------------------------ video
    @staticmethod
    def _foreground(frames: np.ndarray) -> np.ndarray:
        """Per-pixel ball weight: (F, H, W, 3) in [0, 1] -> (F, H, W), brightness above the frame's median."""
        bright = frames.max(axis=-1)
        return np.clip(bright - np.median(bright, axis=(1, 2), keepdims=True), 0.0, None) ** 2

    def centroid_track(self, frames: np.ndarray) -> np.ndarray:
        """The ball's horizontal centroid per frame: (F, H, W, 3) in [0, 1] -> (F,) in [0, 1]."""
        w = self._foreground(frames)
        xs = (np.arange(frames.shape[2]) + 0.5) / frames.shape[2]
        mass = w.sum(axis=(1, 2))
        return (w.sum(axis=1) * xs).sum(axis=1) / np.maximum(mass, 1e-8)

    def turning_frames(self, cx: np.ndarray) -> np.ndarray:
        """Frame indices of the turning points (bounces) of a centroid track."""
        # Continue the motion linearly past both ends, so that a bounce one frame from an edge keeps its
        # prominence (a turning point's prominence is limited by the shorter side).
        pad = 3
        steps = np.arange(1, pad + 1)
        head = cx[0] - (cx[1] - cx[0]) * steps[::-1]
        tail = cx[-1] + (cx[-1] - cx[-2]) * steps
        padded = np.concatenate([head, cx, tail])
        peaks = [find_peaks(sign * padded, prominence=self.prominence)[0] - pad for sign in (1.0, -1.0)]
        return np.sort(np.concatenate(peaks))

    def visual_events(self, frames: np.ndarray) -> np.ndarray:
        """Bounce times (s) from (F, H, W, 3) frames in [0, 1], at whole frames (the original definition)."""
        return self.turning_frames(self.centroid_track(frames)).astype(np.float64) / self.video_fps

    def refined_events(self, frames: np.ndarray) -> np.ndarray:
        """Bounce times (s) below a frame: the ball moves at constant speed between bounces, so each turning
        point lies where the line through the two frames before it meets the line through the two after it
        (kept within one frame of the turning frame; the whole frame where a neighbour is missing)."""
        cx = self.centroid_track(frames)
        times = []
        for k in self.turning_frames(cx):
            t = float(k)
            if 2 <= k <= len(cx) - 3:
                left, right = cx[k - 1] - cx[k - 2], cx[k + 2] - cx[k + 1]  # slopes per frame
                if abs(left - right) > 1e-9:
                    # x = cx[k-1] + left (s - (k-1)) = cx[k+1] + right (s - (k+1))
                    s = (cx[k + 1] - cx[k - 1] - right * (k + 1) + left * (k - 1)) / (left - right)
                    t = float(np.clip(s, k - 1, k + 1))
            times.append(t)
        return np.asarray(times, dtype=np.float64) / self.video_fps

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
        power = 10.0 ** (self._db(mel) / 10.0)  # (n_mels, T)
        band = int(np.argmax(power.mean(axis=1)))
        centres = librosa.mel_frequencies(self.n_mels + 2, fmin=self.fmin, fmax=self.fmax or self.sample_rate / 2)[1:-1]
        pitches = class_pitches(self.num_classes)
        return int(np.argmin(np.abs(np.log(pitches) - np.log(max(centres[band], 1.0)))))

    # ------------------------------------------------------------------------------------- matching
    def match(
        self, onsets: np.ndarray, events: np.ndarray, duration: float, tolerance_frames: float | None = None
    ) -> tuple[int, int, int]:
        """(matched, |onsets|, |events|) inside the clip minus its first and last video frame, one-to-one
        within +-tolerance_frames video frames (default: the probe's).

        Turning points cannot be seen at the first/last frame, so neither set counts there.
        """
        lo, hi = 1.0 / self.video_fps - 1e-9, duration - 1.0 / self.video_fps + 1e-9
        a = onsets[(onsets >= lo) & (onsets <= hi)]
        v = events[(events >= lo) & (events <= hi)]
        if a.size == 0 or v.size == 0:
            return 0, a.size, v.size
        dist = np.abs(a[:, None] - v[None, :])
        tol = (self.tolerance_frames if tolerance_frames is None else tolerance_frames) / self.video_fps + 1e-9
        cost = np.where(dist <= tol, dist, 1e6)
        rows, cols = linear_sum_assignment(cost)
        return int((cost[rows, cols] <= tol).sum()), a.size, v.size


def pair_from_file(probe: SyntheticProbe, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode an mp4 into what the probe scores: frames (F, H, W, 3) in [0, 1] at the probe's fps, and the
    normalised log-mel with the probe's settings (so mp4s written by samplers score like stored arrays)."""
    media = MediaFile(path)
    n = int(np.floor(media.info.duration * probe.video_fps + 1e-6))
    frames = media.frames_at(np.arange(n) / probe.video_fps).astype(np.float32) / 255.0
    mel = AudioLogMel(
        probe.sample_rate,
        probe.n_mels,
        probe.n_fft,
        probe.hop_length,
        probe.fmin,
        probe.fmax,
        probe.min_db,
        probe.max_db,
    ).compute(media, 0.0, n / probe.video_fps)
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
    return derangements(n, 1, seed)[0]


def synthetic_metrics(
    probe: SyntheticProbe, videos: list[np.ndarray], mels: list[np.ndarray], seed: int = 0
) -> dict[str, float]:
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


# ------------------------------------------------------------------------------ calibrated metrics
@dataclass
class Protocol:
    """Settings of the calibrated synthetic metrics, recorded beside every score they produce."""

    tolerance_frames: float = 0.5  # match window of temporal_f1, in video frames
    lag_frames: float = 2.0  # lag_contrast: F1 at lag 0 minus the mean F1 at +-lag
    shift_frames: float = 3.0  # the time-shifted floor: audio moved by this many video frames
    num_derangements: int = 100  # the chance floor: mean (and spread) over this many derangements


@dataclass
class ClipReadout:
    """What the probe reads off one clip: audio onsets, refined and whole-frame bounces, classes."""

    onsets: np.ndarray
    events: np.ndarray
    events_frame: np.ndarray
    colour: int
    pitch: int
    duration: float


def read_clips(probe: SyntheticProbe, videos: list[np.ndarray], mels: list[np.ndarray]) -> list[ClipReadout]:
    if len(videos) != len(mels) or not videos:
        raise ValueError(f"need equally many videos and mels (>0), got {len(videos)} and {len(mels)}")
    return [
        ClipReadout(
            probe.audio_onsets(mel),
            probe.refined_events(frames),
            probe.visual_events(frames),
            probe.colour_class(frames),
            probe.pitch_class(mel),
            frames.shape[0] / probe.video_fps,
        )
        for frames, mel in zip(videos, mels)
    ]


def pair_columns(
    probe: SyntheticProbe,
    protocol: Protocol,
    audio: list[ClipReadout],
    video: list[ClipReadout],
    shift_frames: float = 0.0,
) -> dict[str, np.ndarray]:
    """Per-pair counts (audio[i] with video[i], the audio moved by `shift_frames`) that every statistic
    below is a function of: 2 x matched and |onsets| + |events| at lags 0, +lag, -lag (`_0`, `_p`, `_m`), the
    same for the original definition (`_orig`: whole-frame bounces, the probe's +-1 frame), class agreement."""
    fps = probe.video_fps
    cols: dict[str, list[float]] = {
        k: []
        for k in (
            "matched_0",
            "total_0",
            "matched_p",
            "total_p",
            "matched_m",
            "total_m",
            "matched_orig",
            "total_orig",
            "agree",
            "one",
        )
    }
    for a, v in zip(audio, video):
        for key, lag in (("0", 0.0), ("p", protocol.lag_frames), ("m", -protocol.lag_frames)):
            m, na, nv = probe.match(
                a.onsets + (lag + shift_frames) / fps, v.events, v.duration, protocol.tolerance_frames
            )
            cols[f"matched_{key}"].append(2 * m)
            cols[f"total_{key}"].append(na + nv)
        m, na, nv = probe.match(a.onsets + shift_frames / fps, v.events_frame, v.duration)
        cols["matched_orig"].append(2 * m)
        cols["total_orig"].append(na + nv)
        cols["agree"].append(float(a.pitch == v.colour))
        cols["one"].append(1.0)
    return {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}


def _f1(s: dict, key: str):
    return safe_div(s[f"matched_{key}"], s[f"total_{key}"])


# Each statistic is a function of the column sums (so it bootstraps by resampling pairs).
STATISTICS = {
    "temporal_f1": lambda s: _f1(s, "0"),  # +-0.5 frame, refined
    "lag_contrast": lambda s: _f1(s, "0") - (_f1(s, "p") + _f1(s, "m")) / 2,
    "semantic_agreement": lambda s: safe_div(s["agree"], s["one"]),
    "temporal_alignment": lambda s: _f1(s, "orig"),  # the original definition
}


@dataclass
class CalibratedScores:
    values: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    floors: dict[str, tuple[float, float]]  # derangements: mean, standard deviation
    shifted_floors: dict[str, float]
    columns: dict[str, np.ndarray]
    shuffled: dict[str, float]  # the original chance level: one derangement (`*_shuffled`)


def calibrated_scores(
    probe: SyntheticProbe,
    videos: list[np.ndarray],
    mels: list[np.ndarray],
    protocol: Protocol | None = None,
    seed: int = 0,
) -> CalibratedScores:
    """Every statistic with its 95% bootstrap interval over pairs, its chance floor (the pairs' audio
    deranged, `num_derangements` times) and its time-shifted floor (audio moved by `shift_frames`)."""
    protocol = protocol or Protocol()
    clips = read_clips(probe, videos, mels)
    cols = pair_columns(probe, protocol, clips, clips)
    values = {k: float(f(sums(cols))) for k, f in STATISTICS.items()}
    intervals = {k: bootstrap_interval(cols, f, seed=seed) for k, f in STATISTICS.items()}
    floors: dict[str, tuple[float, float]] = {}
    shuffled: dict[str, float] = {}
    if len(clips) >= 2:
        once = sums(pair_columns(probe, protocol, [clips[j] for j in derangement(len(clips), seed)], clips))
        shuffled = {k: float(f(once)) for k, f in STATISTICS.items()}
        deranged = [
            sums(pair_columns(probe, protocol, [clips[j] for j in perm], clips))
            for perm in derangements(len(clips), protocol.num_derangements, seed)
        ]
        for k, f in STATISTICS.items():
            draws = np.array([float(f(s)) for s in deranged])
            floors[k] = (float(draws.mean()), float(draws.std(ddof=1)))
    shifted = sums(pair_columns(probe, protocol, clips, clips, shift_frames=protocol.shift_frames))
    return CalibratedScores(
        values, intervals, floors, {k: float(f(shifted)) for k, f in STATISTICS.items()}, cols, shuffled
    )
