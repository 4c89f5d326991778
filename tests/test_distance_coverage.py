"""The distance-interval simulation (metrics/distance_coverage.py): its closed forms, the old bootstrap's failure
it documents, and the chosen interval's coverage of the finite-n expectation (slow)."""

from __future__ import annotations

import math

import pytest
import torch

from avgen.metrics.distance_coverage import SCENARIOS, cell, draw, population_fd, population_kvd, spectrum
from avgen.metrics.frechet import FeatureDistances, frechet_distance, frechet_infinity


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_population_fd_is_the_fd_of_the_scenario_gaussians(name):
    s, d = SCENARIOS[name], 7
    v = spectrum(d)
    zero = torch.zeros(d, dtype=torch.float64)
    fd = frechet_distance(zero, torch.diag(v), s.shift * v.sqrt(), torch.diag(s.scale * v))
    assert population_fd(s, d) == pytest.approx(fd.item(), abs=1e-9)


@pytest.mark.parametrize("name", ["same", "far"])
def test_population_kvd_matches_monte_carlo(name):
    """k(x, x') + k(y, y') - 2 k(x, y) over independent draws averages to the closed form."""
    s, d, n = SCENARIOS[name], 6, 200_000
    g = torch.Generator().manual_seed(0)
    (x, y), (x2, y2) = draw(s, n, d, g), draw(s, n, d, g)
    k = lambda a, b: ((a * b).sum(1) / d + 1) ** 3  # noqa: E731
    terms = k(x, x2) + k(y, y2) - 2 * k(x, y)  # (n,) independent
    se = terms.std().item() / math.sqrt(n)
    assert abs(terms.mean().item() - population_kvd(s, d)) < 4 * se


@pytest.mark.parametrize("kind", ["fd", "kvd"])
def test_the_old_bootstrap_never_holds_its_value_and_the_chosen_interval_always_does(kind):
    rows = {r["method"]: r for r in cell(kind, "same", 128, 32, repetitions=6, pool=10, candidates=True, boot=20)}
    assert rows["old: bootstrap generated, fixed reference"]["contains_value"] == 0.0
    chosen = next(r for name, r in rows.items() if name.startswith("chosen"))
    assert chosen["contains_value"] == 1.0 and len(rows) == 6


def test_fd_infinity_removes_the_bias_where_n_is_large_against_d():
    """d = 8, n = 256: FD's expectation sits well above the population FD 0, FD-infinity's on it."""
    g = torch.Generator().manual_seed(0)
    fd, inf = [], []
    for seed in range(12):
        x, y = draw(SCENARIOS["same"], 256, 8, g)
        metric = FeatureDistances(lambda f: f, intervals=False, infinity=True, seed=seed)
        metric.update(x, real=True), metric.update(y, real=False)
        out = metric.compute()
        fd.append(out["fd"].item()), inf.append(out["fd_inf"].item())
    assert out["fd_inf"].item() == pytest.approx(frechet_infinity(x.float(), y.float(), seed=11), rel=1e-9)
    se = torch.tensor(inf).std().item() / math.sqrt(len(inf))
    assert abs(sum(inf) / len(inf)) < 3 * se < min(fd)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,scenario,d",
    [
        ("fd", "same", 32),
        ("fd", "far", 32),
        ("fd", "same", 400),
        ("fd", "far", 2048),
        ("kvd", "same", 32),
        ("kvd", "far", 32),
    ],
)
def test_coverage_of_the_finite_n_expectation(kind, scenario, d):
    """200 draws of n = 128 per set; the expectation from those and 200 more (as the documented table)."""
    row = cell(kind, scenario, 128, d, repetitions=200, pool=200)[0]
    assert row["method"].startswith("chosen") and row["contains_value"] == 1.0
    assert 0.90 <= row["coverage"] <= 0.99, row
