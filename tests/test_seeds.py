"""Seed-level intervals (metrics/seeds.py): coverage by simulation before they are shown."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.metrics.seeds import paired_seed_difference, seed_interval


@pytest.mark.parametrize("n", [3, 5])
def test_the_seed_interval_covers_the_mean_at_its_level(n):
    rng = np.random.default_rng(0)
    reps, covered = 4000, 0
    for _ in range(reps):
        _, low, high = seed_interval(list(rng.normal(0.3, 0.05, n)))
        covered += low <= 0.3 <= high
    # 95% nominal; the Monte Carlo standard error at 4000 repetitions is 0.0034
    assert 0.94 <= covered / reps <= 0.96


def test_paired_seed_differences_resolve_a_real_gap_and_not_noise():
    rng = np.random.default_rng(1)
    base = {s: 0.2 + rng.normal(0, 0.05) for s in range(3)}
    better = {s: v + 0.1 + rng.normal(0, 0.01) for s, v in base.items()}  # the seed effect cancels in pairs
    diff = paired_seed_difference(better, base)
    assert diff["resolved"] and diff["low"] > 0 and diff["seeds"] == 3
    same = paired_seed_difference(base, {s: v + rng.normal(0, 0.01) for s, v in base.items()})
    assert not same["resolved"]
    assert paired_seed_difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}) is None  # fewer than 3 common seeds
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_interval([0.1])
