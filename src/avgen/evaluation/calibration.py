"""Every synthetic score with its interval, its chance floor, its time-shifted floor and its real-data ceiling.

metrics.json keeps one flat number per metric (`temporal_f1`, `lag_contrast`, `semantic_agreement`, and the
original `temporal_alignment` with its single-shuffle `*_shuffled` baseline, so that old runs stay
comparable) and adds, per metric:
- `intervals[name]`: the 95% bootstrap interval over the scored pairs;
- `calibration[name]`: `floor` (mean over `num_derangements` derangements of the run's own pairs) and
  `floor_std`, `shifted_floor` (the audio moved by `shift_frames` video frames), `ceiling` (the same metric on
  as many real test pairs) and `normalised` = (value - floor) / (ceiling - floor): 0 at chance, 1 at real data;
- `protocol.synthetic`: the settings, the sample count, the seed and the reference split.
The per-pair counts go to per_sample.json beside metrics.json, for paired differences between runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from avgen.metrics.stats import calibration_entry, paired_difference, sums
from avgen.metrics.synthetic import (
    STATISTICS,
    Protocol,
    SyntheticProbe,
    calibrated_scores,
    pair_columns,
    read_clips,
    to_frames_01,
)

NESTED = ("intervals", "calibration", "protocol", "paired")


def merge(metrics: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Update `metrics` with `part`, merging the nested report sections instead of replacing them."""
    for key, value in part.items():
        if key in NESTED:
            metrics.setdefault(key, {}).update(value)
        else:
            metrics[key] = value
    return metrics


def _clips(pairs: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return [to_frames_01(v) for v in pairs["video"]], list(pairs["audio"])


def ceilings(probe: SyntheticProbe, real: dict[str, np.ndarray], protocol: Protocol) -> dict[str, float]:
    """The statistics on real test pairs: what a perfect model would score on this many pairs."""
    clips = read_clips(probe, *_clips(real))
    cols = pair_columns(probe, protocol, clips, clips)
    return {k: float(f(sums(cols))) for k, f in STATISTICS.items()}


def synthetic_report(
    probe: SyntheticProbe,
    pairs: dict[str, np.ndarray],
    protocol: Protocol,
    seed: int,
    ceiling: dict[str, float] | None,
    reference: str,
    prefix: str = "",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metrics.json entries, per-pair columns) of generated pairs, names prefixed (e.g. `v2a_`)."""
    videos, mels = _clips(pairs)
    scores = calibrated_scores(probe, videos, mels, protocol, seed)
    out: dict[str, Any] = {f"{prefix}{k}": v for k, v in scores.values.items()}
    out["intervals"] = {f"{prefix}{k}": list(v) for k, v in scores.intervals.items()}
    out["calibration"] = {
        f"{prefix}{k}": calibration_entry(
            value,
            *scores.floors.get(k, (None, None)),
            scores.shifted_floors[k],
            ceiling[k] if ceiling is not None else None,
        )
        for k, value in scores.values.items()
    }
    for k in ("temporal_alignment", "semantic_agreement"):  # the original single-shuffle chance level, as before
        if k in scores.shuffled:
            out[f"{prefix}{k}_shuffled"] = scores.shuffled[k]
    out["protocol"] = {
        f"{prefix}synthetic": {
            **asdict(protocol),
            "num_samples": len(videos),
            "seed": seed,
            "refined_events": True,
            "reference": reference,
        }
    }
    return out, scores.columns


def paired_report(a: dict[str, np.ndarray], b: dict[str, np.ndarray], label: str, seed: int = 0) -> dict[str, Any]:
    """`paired[<metric>: <label>]`: the difference a - b of every statistic over the same sample indices."""
    return {"paired": {f"{k}: {label}": paired_difference(a, b, f, seed=seed).as_dict() for k, f in STATISTICS.items()}}
