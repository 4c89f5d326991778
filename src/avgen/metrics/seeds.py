"""Conclusions across training seeds: a configuration's mean over its seeds with a seed-level interval,
and paired differences between configurations trained with the same seeds.

A run's bootstrap interval covers the sampling noise of its evaluation, not the spread between training
runs; with at least `MIN_SEEDS` seeds the report's headline is the mean over seeds with Student's t
interval (the seeds are the units; coverage checked by simulation in tests/test_seeds.py).
"""

from __future__ import annotations

import math
import statistics

from scipy import stats

MIN_SEEDS = 3


def seed_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean over training seeds (n >= 2)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"a seed-level interval needs at least 2 seeds, got {n}")
    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_seed_difference(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> dict[str, float] | None:
    """a - b over the seeds both were trained with ({seed: value}): mean, interval, resolved (the interval
    excludes 0); None with fewer than MIN_SEEDS common seeds."""
    common = sorted(set(a) & set(b))
    if len(common) < MIN_SEEDS:
        return None
    mean, low, high = seed_interval([a[s] - b[s] for s in common], level)
    return {"mean": mean, "low": low, "high": high, "seeds": len(common), "resolved": low > 0 or high < 0}
