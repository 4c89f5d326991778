"""Uncertainty (metrics/stats.py) and the calibrated synthetic metrics (metrics/synthetic.py,
evaluation/calibration.py)."""

from __future__ import annotations

import numpy as np
from test_metrics_synthetic import _test_pairs

from avgen.evaluation.calibration import ceilings, synthetic_report
from avgen.metrics.stats import bootstrap_interval, derangements, paired_difference, safe_div, sums
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
