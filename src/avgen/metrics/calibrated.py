"""AV-Align and the beat hit rate with their uncertainty and calibration (docs/metrics.md), as for the
synthetic metrics: a 95% bootstrap interval over the scored pairs, the chance floor (mean and spread over
derangements of the pairs), a time-shifted floor (audio moved by `shift_seconds`) and the real-data ceiling.

Peaks and beats are detected once per clip; every variant (resample, derangement, shift) re-matches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avgen.metrics.av_align import match, peaks
from avgen.metrics.beats import beat_hits, beat_times
from avgen.metrics.stats import bootstrap_interval, calibration_entry, derangements, safe_div


@dataclass
class Calibrated:
    value: float
    interval: tuple[float, float]
    floor: float | None  # None with fewer than 2 pairs (nothing to derange)
    floor_std: float | None
    shifted_floor: float
    ceiling: float | None
    columns: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def calibration(self) -> dict[str, float]:
        return calibration_entry(self.value, self.floor, self.floor_std, self.shifted_floor, self.ceiling)


def _floors(score_pairs, n: int, num_derangements: int, seed: int) -> tuple[float | None, float | None]:
    if n < 2:  # one pair has no other pair to be deranged with
        return None, None
    values = [score_pairs(perm) for perm in derangements(n, num_derangements, seed)]
    return float(np.mean(values)), float(np.std(values))


def _shift(times: np.ndarray, seconds: float, duration: float) -> np.ndarray:
    """Event times of the audio moved later by `seconds` (events pushed past the clip's end are gone)."""
    moved = np.asarray(times) + seconds
    return moved[(moved >= 0) & (moved <= duration)]


# AV-Align (Yariv et al. 2023): mean over clips of the IoU of audio onsets and optical-flow peaks
def calibrated_av_align(
    videos: Sequence[np.ndarray],
    audios: Sequence[np.ndarray],
    fps: float,
    sample_rate: int,
    window: float | None = None,
    seed: int = 0,
    num_derangements: int = 100,
    shift_seconds: float | None = None,
    reference: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    mode: str = "reference",
) -> Calibrated:
    """videos (F, H, W, 3) uint8, audios mono waveforms; `reference` (videos, audios): real pairs for the
    ceiling; `mode`: the reference script's AV-Align or the one-to-one variant (metrics/av_align.py; `window`
    is the variant's). shift_seconds defaults to 3 video frames."""
    shift_seconds = 3.0 / fps if shift_seconds is None else shift_seconds
    detected = [peaks(np.asarray(v), a, fps, sample_rate, mode) for v, a in zip(videos, audios)]
    onsets, flows = [d[0] for d in detected], [d[1] for d in detected]
    iou = lambda a, v: match(a, v, fps, mode, window)  # noqa: E731
    duration = len(videos[0]) / fps
    ious = np.array([iou(a, v) for a, v in zip(onsets, flows)])
    columns = {"iou": ious, "ones": np.ones(len(ious))}
    mean = lambda s: safe_div(s["iou"], s["ones"])  # noqa: E731
    floor, floor_std = _floors(
        lambda perm: np.mean([iou(onsets[j], flows[i]) for i, j in enumerate(perm)]),
        len(ious),
        num_derangements,
        seed,
    )
    shifted = float(np.mean([iou(_shift(a, shift_seconds, duration), v) for a, v in zip(onsets, flows)]))
    ceiling = None
    if reference is not None:
        ref_videos, ref_audios = reference
        ceiling = float(
            np.mean([iou(*peaks(np.asarray(v), a, fps, sample_rate, mode)) for v, a in zip(ref_videos, ref_audios)])
        )
    return Calibrated(
        float(ious.mean()), bootstrap_interval(columns, mean, seed=seed), floor, floor_std, shifted, ceiling, columns
    )


# Beat hit rate (CMMD §4): reference beats with a generated beat within +-tolerance, over all reference beats
def calibrated_beat_hit_rate(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    sample_rate: int,
    tolerance: float,
    seed: int = 0,
    num_derangements: int = 100,
    shift_seconds: float = 0.3,
) -> Calibrated:
    """Generated and reference mono waveforms, paired by index. The ceiling is 1 by construction (the
    reference scored against itself hits every beat); the floors pair each reference with another clip's
    generated beats, or with its own moved by `shift_seconds`."""
    gen = [beat_times(np.asarray(g).reshape(-1), sample_rate) for g in generated]
    ref = [beat_times(np.asarray(r).reshape(-1), sample_rate) for r in reference]
    duration = len(np.asarray(reference[0]).reshape(-1)) / sample_rate
    hits = np.array([beat_hits(g, r, tolerance) for g, r in zip(gen, ref)], dtype=float)
    beats = np.array([len(r) for r in ref], dtype=float)
    rate = lambda s: safe_div(s["hits"], s["beats"])  # noqa: E731
    pooled = lambda pairs: safe_div(sum(beat_hits(g, r, tolerance) for g, r in pairs), beats.sum())  # noqa: E731
    floor, floor_std = _floors(
        lambda perm: float(pooled((gen[j], ref[i]) for i, j in enumerate(perm))), len(gen), num_derangements, seed
    )
    shifted = float(pooled((_shift(g, shift_seconds, duration), r) for g, r in zip(gen, ref)))
    columns = {"hits": hits, "beats": beats}
    return Calibrated(
        float(rate({k: v.sum() for k, v in columns.items()})),
        bootstrap_interval(columns, rate, seed=seed),
        floor,
        floor_std,
        shifted,
        1.0,
        columns,
    )
