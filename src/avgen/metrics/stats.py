"""Uncertainty for every reported number: bootstrap intervals over samples, paired differences between runs,
and chance floors over many derangements.

A metric here is a function of per-sample column sums (a pooled F1 is 2 * sum(matched) / sum(onsets +
events); a mean is sum(values) / sum(ones); the lag contrast combines three such F1s). Resampling samples
with replacement and recomputing it gives the percentile bootstrap interval (Efron & Tibshirani 1993,
ch. 13). For two runs scored on the same sample indices (generation seeded per index: same noise, same
conditions), resampling the *same* indices for both gives the interval of their difference: a paired design,
far tighter than two independent intervals when the runs share their per-sample difficulty.

Distances between feature sets (FD, KVD) are no such function: `distance_interval` and
`paired_distance_difference` use the corrected jackknife of `metrics/distance_intervals.py` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from avgen.metrics.distance_intervals import DistanceInterval, jackknife_interval
from avgen.metrics.frechet import SubsetFrechet, SubsetKernel, frechet_interval, kernel_interval

LEVEL = 0.95
NUM_BOOT = 2000

Columns = dict[str, np.ndarray]  # per-sample values; a metric is a function of their sums


def safe_div(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def sums(columns: Columns, idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Column sums over all samples, or over each row of resampled indices `idx` (num_boot, n)."""
    return {
        k: (np.asarray(v, float)[idx].sum(axis=-1) if idx is not None else np.asarray(v, float).sum())
        for k, v in columns.items()
    }


def _indices(n: int, num_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(num_boot, n))  # (num_boot, n)


def _length(columns: Columns) -> int:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"per-sample columns of unequal lengths: { {k: len(v) for k, v in columns.items()} }")
    return lengths.pop()


def bootstrap_interval(
    columns: Columns,
    statistic: Callable[[dict], np.ndarray],
    level: float = LEVEL,
    num_boot: int = NUM_BOOT,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of `statistic(sums(columns))` over samples resampled with replacement."""
    n = _length(columns)
    if n < 2:
        value = float(statistic(sums(columns)))
        return value, value
    boot = statistic(sums(columns, _indices(n, num_boot, seed)))
    alpha = (1 - level) / 2
    return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))


@dataclass
class PairedDifference:
    difference: float  # run a - run b
    low: float
    high: float

    @property
    def resolved(self) -> bool:
        """The interval excludes 0: the runs differ at this level."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {"difference": self.difference, "interval": [self.low, self.high], "resolved": self.resolved}


def paired_difference(
    a: Columns,
    b: Columns,
    statistic: Callable[[dict], np.ndarray],
    level: float = LEVEL,
    num_boot: int = NUM_BOOT,
    seed: int = 0,
) -> PairedDifference:
    """Interval of statistic(a) - statistic(b) for two runs scored on the same sample indices (index i of
    one paired with index i of the other), resampling the same indices for both."""
    n = _length(a)
    if _length(b) != n:
        raise ValueError(f"paired samples need equal counts, got {n} and {_length(b)}")
    diff = float(statistic(sums(a)) - statistic(sums(b)))
    idx = _indices(n, num_boot, seed)
    boot = statistic(sums(a, idx)) - statistic(sums(b, idx))
    alpha = (1 - level) / 2
    return PairedDifference(diff, float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha)))


def distance_interval(
    reference: torch.Tensor, generated: torch.Tensor, kind: str = "fd", level: float = LEVEL, seed: int = 0
) -> DistanceInterval:
    """FD (`kind="fd"`) or polynomial KD (`"kvd"`, 100 subsets of up to 1000) between (N, d) reference and
    (M, d) generated features, with an interval for its expectation at these sample counts: `value`, `low`,
    `high`, `std`, `method` (docs/metrics.md, "Distance intervals"). (N, n, d) frame embeddings: FD pools the
    frames, KD takes clip means, and the jackknife leaves out whole clips."""
    if kind == "fd":
        return frechet_interval(_clips(reference), _clips(generated), level, seed)
    if kind == "kvd":
        return kernel_interval(_clips(reference).mean(1), _clips(generated).mean(1), level=level, seed=seed)[0]
    raise ValueError(f"distance kind must be 'fd' or 'kvd', got {kind!r}")


def paired_distance_difference(
    reference: torch.Tensor,
    generated_a: torch.Tensor,
    generated_b: torch.Tensor,
    kind: str = "fd",
    level: float = LEVEL,
    seed: int = 0,
) -> PairedDifference:
    """Interval of distance(reference, a) - distance(reference, b) for two runs scored against the same
    (N, d) reference, their (M, d) samples paired by index: the jackknife leaves out the same reference and
    the same sample indices of both runs, so what the runs share (the reference, per-index seeds) cancels.
    KVD: the difference of the complete statistics (all pairs, no random subsets). (N, n, d) frame
    embeddings as in `distance_interval`."""
    if len(generated_a) != len(generated_b):
        raise ValueError(f"paired runs need equal sample counts, got {len(generated_a)} and {len(generated_b)}")
    if kind not in ("fd", "kvd"):
        raise ValueError(f"distance kind must be 'fd' or 'kvd', got {kind!r}")
    ref = _clips(reference)
    subset = (
        (lambda g: SubsetFrechet(ref, _clips(g)))
        if kind == "fd"
        # noqa: E731
        else (lambda g: SubsetKernel(ref.mean(1), _clips(g).mean(1)))
    )
    a, b = subset(generated_a), subset(generated_b)
    difference = lambda keep_ref, keep_gen: a(keep_ref, keep_gen) - b(keep_ref, keep_gen)  # noqa: E731
    every = (torch.ones(len(reference), dtype=torch.bool), torch.ones(len(generated_a), dtype=torch.bool))
    d = jackknife_interval(difference(*every), difference, (len(reference), len(generated_a)), level, seed)
    return PairedDifference(d.value, d.low, d.high)


def _clips(features: torch.Tensor) -> torch.Tensor:
    return features[:, None] if features.ndim == 2 else features  # (N, d) -> (N, 1, d)


def derangements(n: int, count: int, seed: int = 0) -> np.ndarray:
    """`count` seeded permutations of n (>= 2) items without fixed points: (count, n)."""
    if n < 2:
        raise ValueError("shuffling among samples needs at least 2 of them")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:  # rejection sampling: a random permutation is a derangement with probability ~1/e
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            out.append(perm)
    return np.stack(out)


def calibration_entry(
    value: float,
    floor: float | None = None,
    floor_std: float | None = None,
    shifted_floor: float | None = None,
    ceiling: float | None = None,
) -> dict[str, float]:
    """A metric's `calibration` entry: the floors and ceiling known for it, and, where both a floor and a
    ceiling above it are known, normalised = (value - floor) / (ceiling - floor): 0 at chance, 1 at real data."""
    out = {
        k: v
        for k, v in (("floor", floor), ("floor_std", floor_std), ("shifted_floor", shifted_floor), ("ceiling", ceiling))
        if v is not None
    }
    if floor is not None and ceiling is not None and ceiling - floor > 1e-9:
        out["normalised"] = (value - floor) / (ceiling - floor)
    return out
