"""Uncertainty (metrics/stats.py) and the calibrated synthetic metrics (metrics/synthetic.py,
evaluation/calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_metrics_synthetic import _test_pairs

from avgen.evaluation.calibration import ceilings, synthetic_report
from avgen.metrics.frechet import FeatureDistances
from avgen.metrics.stats import (
    bootstrap_interval,
    derangements,
    distance_interval,
    paired_difference,
    paired_distance_difference,
    safe_div,
    sums,
)
from avgen.metrics.synthetic import STATISTICS, Protocol, synthetic_metrics

MEAN = lambda s: safe_div(s["x"], s["one"])  # noqa: E731


def test_bootstrap_interval_covers_the_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(300):
        x = rng.exponential(1.0, size=80)  # skewed, true mean 1
        lo, hi = bootstrap_interval({"x": x, "one": np.ones_like(x)}, MEAN, num_boot=500, seed=trial)
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / 300 <= 0.98, covered / 300


def test_paired_difference_resolves_a_planted_difference_and_not_noise():
    rng = np.random.default_rng(1)
    n = 128
    difficulty = rng.uniform(0.2, 0.8, n)  # shared per-sample difficulty: what pairing removes
    base = (rng.uniform(size=n) < difficulty).astype(float)
    better = np.maximum(base, (rng.uniform(size=n) < 0.1 / (1 - difficulty.mean())).astype(float))
    a, b = {"x": better, "one": np.ones(n)}, {"x": base, "one": np.ones(n)}
    planted = paired_difference(a, b, MEAN)
    assert planted.resolved and planted.low > 0 and 0.05 < planted.difference < 0.2
    # the same model and seed, scored with other noise: no resolved difference
    same = [(rng.uniform(size=n) < difficulty).astype(float) for _ in range(2)]
    noise = paired_difference({"x": same[0], "one": np.ones(n)}, {"x": same[1], "one": np.ones(n)}, MEAN)
    assert not noise.resolved and noise.low < 0 < noise.high


def test_derangements_have_no_fixed_point_and_are_uniform_off_the_diagonal():
    perms = derangements(6, 3000, seed=0)
    assert not np.any(perms == np.arange(6))
    freq = np.stack([(perms == j).mean(axis=0) for j in range(6)])  # P(perm[i] == j)
    off = freq[~np.eye(6, dtype=bool)]
    np.testing.assert_allclose(off, 1 / 5, atol=0.03)


def test_derangement_floor_equals_its_closed_form(synthetic_store):
    """Semantic agreement over derangements: E = mean_i #{j != i: pitch_j = colour_i} / (n - 1)."""
    from avgen.metrics.synthetic import calibrated_scores, read_clips

    _, probe, videos, mels = _test_pairs(synthetic_store)
    clips = read_clips(probe, videos, mels)
    n = len(clips)
    closed = np.mean([sum(clips[j].pitch == clips[i].colour for j in range(n) if j != i) / (n - 1) for i in range(n)])
    scores = calibrated_scores(probe, videos, mels, Protocol(num_derangements=400), seed=3)
    mean, std = scores.floors["semantic_agreement"]
    assert abs(mean - closed) < 3 * std / np.sqrt(400) + 1e-9, (mean, closed)


def test_lag_contrast_real_near_one_deranged_near_zero(synthetic_store):
    _, probe, videos, mels = _test_pairs(synthetic_store)
    report, columns = synthetic_report(
        probe,
        {"video": _store_layout(videos), "audio": np.stack(mels)},
        Protocol(),
        seed=0,
        ceiling=None,
        reference="test",
    )
    assert report["lag_contrast"] > 0.85 and report["temporal_f1"] > 0.85
    floor = report["calibration"]["lag_contrast"]
    assert abs(floor["floor"]) < 0.1 and floor["floor_std"] > 0
    assert report["calibration"]["temporal_f1"]["shifted_floor"] < 0.3  # audio 3 frames late
    lo, hi = report["intervals"]["temporal_f1"]
    assert lo <= report["temporal_f1"] <= hi and hi - lo < 0.2
    assert set(columns) >= {"matched_0", "total_0", "agree"} and len(columns["agree"]) == len(videos)


def test_the_original_metrics_keep_their_values(synthetic_store):
    _, probe, videos, mels = _test_pairs(synthetic_store)
    old = synthetic_metrics(probe, videos, mels, seed=0)
    new, _ = synthetic_report(
        probe,
        {"video": _store_layout(videos), "audio": np.stack(mels)},
        Protocol(),
        seed=0,
        ceiling=None,
        reference="test",
    )
    for key in (
        "temporal_alignment",
        "semantic_agreement",
        "temporal_alignment_shuffled",
        "semantic_agreement_shuffled",
    ):
        assert new[key] == old[key], key


def test_ceiling_and_normalised_score(synthetic_store):
    _, probe, videos, mels = _test_pairs(synthetic_store)
    real = {"video": _store_layout(videos), "audio": np.stack(mels)}
    ceiling = ceilings(probe, real, Protocol())
    report, _ = synthetic_report(probe, real, Protocol(num_derangements=20), seed=0, ceiling=ceiling, reference="t")
    assert report["calibration"]["temporal_f1"]["normalised"] == 1.0  # real pairs are their own ceiling
    assert set(ceiling) == set(STATISTICS)


def _store_layout(frames_01: list[np.ndarray]) -> np.ndarray:
    """(F, H, W, 3) in [0, 1] -> the store's (F, 3, H, W) in [-1, 1]."""
    return np.stack([f.transpose(0, 3, 1, 2) * 2 - 1 for f in frames_01])


def test_sums_over_resampled_indices():
    cols = {"x": np.array([1.0, 2.0, 3.0])}
    np.testing.assert_allclose(sums(cols, np.array([[0, 0, 2], [1, 1, 1]]))["x"], [5.0, 6.0])


@pytest.mark.parametrize("kind", ["fd", "kvd"])
def test_distance_interval_contains_its_estimate(kind):
    """Sizes from the smallest allowed to unequal sets, features from (N, d) to frame embeddings (N, n, d),
    a set against itself, far apart sets: the value is always inside (the old bootstrap never held it)."""
    g = torch.Generator().manual_seed(0)
    cases = [
        (4, 5, (3,), 0.0),
        (12, 12, (6,), 0.0),
        (40, 30, (8,), 0.5),
        (64, 64, (50,), 0.1),
        (30, 30, (3, 5), 2.0),
        (200, 150, (20,), 0.0),
    ]
    for n, m, shape, shift in cases:
        ref = torch.randn(n, *shape, generator=g)
        for gen in (torch.randn(m, *shape, generator=g) * 1.1 + shift, ref):
            d = distance_interval(ref, gen, kind, seed=n)
            assert d.low <= d.value <= d.high, (kind, n, m, shape, shift, d)
            assert "jackknife" in d.method
    with pytest.raises(ValueError, match="'fd' or 'kvd'"):
        distance_interval(ref, ref, "fid")


def test_distance_interval_is_the_feature_distances_one():
    g = torch.Generator().manual_seed(1)
    ref, gen = torch.randn(48, 7, generator=g), torch.randn(40, 7, generator=g) + 0.2
    metric = FeatureDistances(lambda x: x, "fvd", kernel_subsets=100, kernel_subset_size=1000, seed=5)
    metric.update(ref, real=True), metric.update(gen, real=False)
    out = metric.compute()
    for kind, key in (("fd", "fvd"), ("kvd", "kvd")):
        d = distance_interval(ref, gen, kind, seed=5)
        assert [d.value, d.low, d.high] == pytest.approx([out[key].item(), *out[f"{key}_interval"].tolist()], rel=1e-9)


@pytest.mark.parametrize("kind", ["fd", "kvd"])
def test_paired_distance_difference_resolves_a_planted_shift_and_not_a_run_with_itself(kind):
    g = torch.Generator().manual_seed(3)
    n, d = 160, 12
    ref = torch.randn(n, d, generator=g)
    run = torch.randn(n, d, generator=g)
    itself = paired_distance_difference(ref, run, run, kind)
    assert not itself.resolved and itself.difference == 0
    rerun = torch.randn(n, d, generator=g)  # the same model, other noise: no evidence of a difference
    assert not paired_distance_difference(ref, run, rerun, kind).resolved
    shifted = run + 0.4  # a planted mean shift: run b is further from the reference
    planted = paired_distance_difference(ref, shifted, run, kind)
    assert planted.resolved and planted.low > 0, planted
    with pytest.raises(ValueError, match="equal sample counts"):
        paired_distance_difference(ref, run, run[:-1], kind)
