"""Coverage of distance intervals on Gaussian features, where the truth is known (docs/metrics.md,
"Distance intervals"): `python -m avgen.metrics.distance_coverage --kinds fd --n 128 512 --d 32 400`.

Reference ~ N(0, S), generated ~ N(shift * s, scale * S), s_i = sqrt(S_ii), S = diag(i^-1/2) scaled to mean 1 (a
decaying spectrum, as learned features have). Known: the population FD and KD (closed forms below). What an
interval covers: the estimator's expectation at the sample count used, by Monte Carlo over independent draws
(the repetitions' own values and `pool` more). Each repetition draws both sets and builds each method's
interval; coverage is the fraction of intervals that contain that expectation.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from avgen.metrics.distance_intervals import corrected_variance, jackknife, jackknife_variance, t_interval
from avgen.metrics.frechet import SubsetFrechet, SubsetKernel, frechet_distance, frechet_infinity, gaussian_stats
from avgen.metrics.stats import distance_interval, paired_distance_difference


@dataclass(frozen=True)
class Scenario:
    shift: float  # generated mean = shift * sqrt(S_ii) per dimension
    scale: float  # generated covariance = scale * S


SCENARIOS = {"same": Scenario(0.0, 1.0), "near": Scenario(0.05, 1.2), "far": Scenario(0.5, 1.2)}


def spectrum(d: int) -> torch.Tensor:
    lam = torch.arange(1, d + 1, dtype=torch.float64) ** -0.5
    return lam / lam.mean()  # (d,) variances, tr S = d


def draw(s: Scenario, n: int, d: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    sd = spectrum(d).sqrt()
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * sd
    y = torch.randn(n, d, generator=g, dtype=torch.float64) * sd * math.sqrt(s.scale) + s.shift * sd
    return x, y


# Population FD of the scenario: ||shift||^2 + tr(S + cS - 2 sqrt(c) S) = (shift^2 + (1 - sqrt(c))^2) tr S.
def population_fd(s: Scenario, d: int) -> float:
    return (s.shift**2 + (1 - math.sqrt(s.scale)) ** 2) * d


# E k(X, Y) for the cubic kernel, X ~ N(mx, diag vx), Y ~ N(my, diag vy) independent, u = X.Y:
# E u = a, E u^2 = t + bx + by + a^2, E u^3 = a^3 + 3a(bx + by + t) + 6 sum mx vy vx my, with a = mx.my,
# t = sum vx vy, bx = sum mx^2 vy, by = sum my^2 vx (Gaussian moments; u | Y is normal).
def expected_kernel(mx, vx, my, vy) -> float:
    d = len(mx)
    a, t, bx, by = (mx @ my).item(), (vx @ vy).item(), (mx**2 @ vy).item(), (my**2 @ vx).item()
    u3 = a**3 + 3 * a * (bx + by + t) + 6 * (mx * vy * vx * my).sum().item()
    return 1 + 3 * a / d + 3 * (t + bx + by + a * a) / d**2 + u3 / d**3


def population_kvd(s: Scenario, d: int) -> float:
    v = spectrum(d)
    mx, my, vy = torch.zeros(d, dtype=torch.float64), s.shift * v.sqrt(), s.scale * v
    return expected_kernel(mx, v, mx, v) + expected_kernel(my, vy, my, vy) - 2 * expected_kernel(mx, v, my, vy)


Method = Callable[[torch.Tensor, torch.Tensor, int], tuple[float, float]]  # (x, y, seed) -> (low, high)


def chosen(kind: str) -> Method:
    """The library's interval: `avgen.metrics.stats.distance_interval`."""

    def method(x, y, seed):
        iv = distance_interval(x, y, kind, seed=seed)
        return iv.low, iv.high

    return method


def jackknife_method(kind: str, groups: int, pairs: int, variance: Callable) -> Method:
    """A jackknife variant: `variance` of the `Jackknife` (plain or corrected), t interval about the value."""

    def method(x, y, seed):
        statistic = SubsetFrechet(x[:, None], y[:, None]) if kind == "fd" else SubsetKernel(x, y)
        j = jackknife(statistic, (len(x), len(y)), groups, pairs, seed)
        return t_interval(j.value, variance(j), len(j.leave_one_out) - 1)

    return method


def counts_statistic(kind: str, x: torch.Tensor, y: torch.Tensor, dedup: bool) -> Callable[..., float]:
    """The statistic of sets given as counts of each sample (a resample): FD of the rows repeated; KD over
    pairs of positions, or (`dedup`) without the pairs of a sample with its own copy."""
    if kind == "fd":
        return lambda cx, cy: float(
            frechet_distance(*gaussian_stats(x.repeat_interleave(cx, 0)), *gaussian_stats(y.repeat_interleave(cy, 0)))
        )
    k = SubsetKernel(x, y)

    def within(mat: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        self_pairs = (w * w if dedup else w) @ mat.diagonal()
        return (w @ mat @ w - self_pairs) / (w.sum() ** 2 - (w * w if dedup else w).sum())

    def statistic(cx, cy):
        wx, wy = cx.double(), cy.double()
        return float(within(k.kxx, wx) + within(k.kyy, wy) - 2 * (wx @ k.kxy @ wy) / (wx.sum() * wy.sum()))

    return statistic


def resampling(kind: str, draw_counts: Callable, boot: int, centred: bool, dedup: bool = True) -> Method:
    """Percentile interval of `boot` resamples (`centred`: value - (resample - their mean) quantiles)."""

    def method(x, y, seed):
        g, statistic = torch.Generator().manual_seed(seed), counts_statistic(kind, x, y, dedup)
        vals = np.array([statistic(*draw_counts(len(x), len(y), g)) for _ in range(boot)])
        if not centred:
            return tuple(np.quantile(vals, [0.025, 0.975]))
        value = statistic(torch.ones(len(x), dtype=torch.long), torch.ones(len(y), dtype=torch.long))
        lo, hi = np.quantile(vals - vals.mean(), [0.025, 0.975])
        return value - hi, value - lo

    return method


def with_replacement(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.bincount(torch.randint(n, (n,), generator=g), minlength=n)


def half(n: int, g: torch.Generator) -> torch.Tensor:
    return (torch.randperm(n, generator=g) < n // 2).long()  # m = n/2 without replacement: rate factor 1


def methods(kind: str, candidates: bool, boot: int) -> dict[str, Method]:
    out = {"chosen: corrected jackknife 10 groups, 45 pairs": chosen(kind)}
    if candidates:
        out.update(
            {
                "old: bootstrap generated, fixed reference": resampling(
                    kind, lambda n, m, g: (torch.ones(n, dtype=torch.long), with_replacement(m, g)), boot, False, False
                ),
                "bootstrap both sets, centred": resampling(
                    kind, lambda n, m, g: (with_replacement(n, g), with_replacement(m, g)), boot, True
                ),
                "half-sampling both sets, centred": resampling(
                    kind, lambda n, m, g: (half(n, g), half(m, g)), boot, True
                ),
                "jackknife 10 groups": jackknife_method(kind, 10, 0, jackknife_variance),
                "corrected jackknife 16 groups, 32 of 120 pairs": jackknife_method(kind, 16, 32, corrected_variance),
            }
        )
    return out


def value_of(kind: str, x: torch.Tensor, y: torch.Tensor) -> float:
    """FD, or KD as published (100 subsets of up to 1000)."""
    if kind == "fd":
        return SubsetFrechet(x[:, None], y[:, None]).full()
    return SubsetKernel(x, y).over_subsets(100, 1000)[0]


def cell(
    kind: str,
    scenario: str,
    n: int,
    d: int,
    repetitions: int,
    pool: int = 200,
    candidates: bool = False,
    boot: int = 100,
    seed: int = 0,
) -> list[dict]:
    """One row per method: coverage of the finite-n expectation, how often the value is inside, width."""
    s, g = SCENARIOS[scenario], torch.Generator().manual_seed(seed)
    start = time.time()
    ms = methods(kind, candidates, boot)
    values, bounds = [], {name: [] for name in ms}
    for r in range(repetitions):
        x, y = draw(s, n, d, g)
        values.append(value_of(kind, x, y))
        for name, method in ms.items():
            bounds[name].append(method(x, y, seed * 100003 + r))
    extra = [value_of(kind, *draw(s, n, d, g)) for _ in range(pool)]
    expectation, spread = float(np.mean(values + extra)), float(np.std(values + extra))
    population = population_fd(s, d) if kind == "fd" else population_kvd(s, d)
    v = np.array(values)
    rows = []
    for name, b in bounds.items():
        lo, hi = np.array(b).T
        rows.append(
            {
                "kind": kind,
                "scenario": scenario,
                "n": n,
                "d": d,
                "repetitions": repetitions,
                "population": population,
                "expectation": expectation,
                "sd": spread,
                "method": name,
                "expectation_se": spread / math.sqrt(len(v) + pool),
                "coverage": float(np.mean((lo <= expectation) & (expectation <= hi))),
                "contains_value": float(np.mean((lo <= v) & (v <= hi))),
                "width": float(np.mean(hi - lo) / (2 * 1.96 * spread)),
                "seconds": time.time() - start,
            }
        )
    return rows


def infinity_row(scenario: str, n: int, d: int, repetitions: int, seed: int = 0) -> dict:
    """FD and FD-infinity (`frechet.frechet_infinity`) against the population FD: mean error and spread."""
    s, g = SCENARIOS[scenario], torch.Generator().manual_seed(seed)
    fd, inf = [], []
    for r in range(repetitions):
        x, y = draw(s, n, d, g)
        fd.append(value_of("fd", x, y))
        inf.append(frechet_infinity(x, y, seed=r))
    pop = population_fd(s, d)
    return {
        "scenario": scenario,
        "n": n,
        "d": d,
        "repetitions": repetitions,
        "population": pop,
        "fd_bias": float(np.mean(fd)) - pop,
        "fd_sd": float(np.std(fd)),
        "inf_bias": float(np.mean(inf)) - pop,
        "inf_sd": float(np.std(inf)),
    }


def paired_resolved(kind: str, n: int, d: int, shift: float, repetitions: int, seed: int = 0) -> float:
    """How often run a (the reference's distribution) and run b (its mean moved by `shift` sqrt(S_ii)) come out
    resolved against one reference: at shift 0 the false-resolution rate, else the power."""
    g, same = torch.Generator().manual_seed(seed), SCENARIOS["same"]
    resolved = []
    for r in range(repetitions):
        ref, a = draw(same, n, d, g)
        b = draw(Scenario(shift, 1.0), n, d, g)[1]
        resolved.append(paired_distance_difference(ref, a, b, kind, seed=r).resolved)
    return float(np.mean(resolved))


def markdown(row: dict) -> str:
    se = math.sqrt(0.95 * 0.05 / row["repetitions"])
    return (
        f"| {row['kind']} | {row['scenario']} | {row['n']} | {row['d']} | {row['population']:.4g} | "
        f"{row['expectation']:.4g} | {row['sd']:.3g} | {row['method']} | {row['repetitions']} | "
        f"{row['coverage']:.3f} ± {se:.3f} | {row['contains_value']:.2f} | {row['width']:.2f} |"
    )


HEADER = (
    "| kind | scenario | n | d | population | E at n | sd | method | reps | coverage | contains value | "
    "width / (2 x 1.96 sd) |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kinds", nargs="+", default=["fd", "kvd"], choices=["fd", "kvd"])
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--n", nargs="+", type=int, default=[128, 512, 2048])
    p.add_argument("--d", nargs="+", type=int, default=[32, 400, 2048])
    p.add_argument("--repetitions", type=int, default=200)
    p.add_argument("--pool", type=int, default=200, help="extra draws for the expectation")
    p.add_argument("--candidates", action="store_true", help="also the rejected methods (slow: --boot resamples)")
    p.add_argument("--boot", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--infinity", action="store_true", help="instead: FD and FD-infinity against the population FD")
    p.add_argument("--paired", nargs="*", type=float, help="instead: resolved paired differences at these shifts")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.paired is not None:
        print("| kind | n | d | reps | shift of run b | resolved |\n|---|---|---|---|---|---|")
        for kind, n, d, shift in itertools.product(args.kinds, args.n, args.d, args.paired):
            rate = paired_resolved(kind, n, d, shift, args.repetitions, args.seed)
            print(f"| {kind} | {n} | {d} | {args.repetitions} | {shift} | {rate:.3f} |", flush=True)
        return
    if args.infinity:
        print("| scenario | n | d | reps | population FD | FD - population (sd) | FD-inf - population (sd) |")
        print("|---|---|---|---|---|---|---|")
        for scenario, n, d in itertools.product(args.scenarios, args.n, args.d):
            r = infinity_row(scenario, n, d, args.repetitions, args.seed)
            print(
                f"| {scenario} | {n} | {d} | {r['repetitions']} | {r['population']:.4g} | {r['fd_bias']:.4g} "
                f"({r['fd_sd']:.3g}) | {r['inf_bias']:.4g} ({r['inf_sd']:.3g}) |",
                flush=True,
            )
        return
    print(HEADER, flush=True)
    for kind, scenario, n, d in itertools.product(args.kinds, args.scenarios, args.n, args.d):
        for row in cell(kind, scenario, n, d, args.repetitions, args.pool, args.candidates, args.boot, args.seed):
            print(markdown(row) + f" <!-- {row['seconds']:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
