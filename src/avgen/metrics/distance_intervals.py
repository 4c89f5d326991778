"""Intervals for distances between feature sets (FD, KVD and their paired differences; docs/metrics.md).

A set distance is not a mean over samples, and resampling with replacement breaks it: a resample with
duplicated clips has a shrunken covariance, so its distances sit above the estimate (the old intervals did not
contain their own value). The interval here is for the distance's *expectation at the sample counts used*
(what another draw of both sets would give on average), from a grouped jackknife over both sets:

- each set is cut into K = 10 equal random groups; group k of every set is left out together (K values),
  and so is every pair of groups (K(K-1)/2 = 45 values);
- the jackknife variance counts the second-order part of the variance (interactions between samples, all of
  a distance's variance when the two sets come from one distribution) twice (Efron & Stein 1981); the
  pairwise interactions of the groups measure that part, which is subtracted once;
- value +- t_{K-1} * std: symmetric about the value, so it always contains it.

The choice and its measured coverage: `avgen.metrics.distance_coverage` and docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import stdtrit  # Student's t quantile (scipy.stats costs a second to import)

LEVEL = 0.95
GROUPS = 10  # K: groups per set (fewer where a set has fewer samples)
PAIRS = 45  # P: left-out pairs of groups that measure the second-order variance (45: all pairs of 10)
MIN_SAMPLES = 4  # per set: fewer give no interval

Statistic = Callable[..., float]  # statistic(*keep): one (N_s,) bool mask of kept samples per set


@dataclass(frozen=True)
class DistanceInterval:
    value: float
    low: float
    high: float
    std: float  # the standard error the interval is built from
    method: str

    def as_dict(self) -> dict:
        return {"value": self.value, "interval": [self.low, self.high], "std": self.std, "method": self.method}


@dataclass(frozen=True)
class Jackknife:
    value: float  # the statistic on all samples
    leave_one_out: np.ndarray  # (K,): group k of every set left out
    pairs: np.ndarray  # (P, 2): the pairs of groups left out together
    leave_two_out: np.ndarray  # (P,)
    kept: float  # fraction of the samples in some group (the n % K left over stay in)


def group_ids(n: int, groups: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) random group of each sample, 0..groups-1, all groups of n // groups; -1: never left out.
    Equal sizes matter: a distance's bias depends on the sample count, so unequal groups would add spread."""
    ids = torch.full((n,), -1, dtype=torch.long)
    size = n // groups
    ids[torch.randperm(n, generator=generator)[: size * groups]] = torch.arange(groups).repeat_interleave(size)
    return ids


def jackknife(
    statistic: Statistic, sizes: tuple[int, ...], groups: int = GROUPS, pairs: int = PAIRS, seed: int = 0
) -> Jackknife:
    """The statistic with every group, and `pairs` random pairs of groups, left out of all sets at once."""
    k = min(groups, *sizes)
    if k < MIN_SAMPLES:
        raise ValueError(f"a distance interval needs at least {MIN_SAMPLES} samples per set, got {sizes}")
    g = torch.Generator().manual_seed(seed)
    ids = [group_ids(n, k, g) for n in sizes]
    keep = lambda *left: [~torch.isin(i, torch.tensor(left, dtype=torch.long)) for i in ids]  # noqa: E731
    all_pairs = np.array([(a, b) for a in range(k) for b in range(a + 1, k)])  # (K(K-1)/2, 2)
    chosen = all_pairs[np.sort(np.random.default_rng(seed).permutation(len(all_pairs))[:pairs])]
    kept = float(np.mean([(i >= 0).sum().item() / n for i, n in zip(ids, sizes)]))
    return Jackknife(
        statistic(*keep()),
        np.array([statistic(*keep(a)) for a in range(k)]),
        chosen,
        np.array([statistic(*keep(a, b)) for a, b in chosen]),
        kept,
    )


# Grouped jackknife variance (Efron & Tibshirani 1993, ch. 11, with groups as units), scaled from the
# samples in groups to all samples.
def jackknife_variance(j: Jackknife) -> float:
    k = len(j.leave_one_out)
    return (k - 1) / k * float(np.sum((j.leave_one_out - j.leave_one_out.mean()) ** 2)) / j.kept


# Second-order variance: the sum over pairs of groups of their squared interaction
# theta_(ab) - theta_(a) - theta_(b) + theta, less the part the groups' own effects explain (a fitted multiple of
# the leave-one-out deviations), times ((K - 2) / K)^4: an interaction is 2 b_ab / (K - 2)^2 for a
# second-order term b_ab / K^2 of theta (Efron & Stein 1981, the ANOVA decomposition).
def second_order_variance(j: Jackknife) -> float:
    k, p = len(j.leave_one_out), len(j.pairs)
    if p < 3:
        return 0.0
    a, b = j.pairs.T
    interaction = j.leave_two_out - j.leave_one_out[a] - j.leave_one_out[b] + j.value  # (P,)
    dev = j.leave_one_out - j.leave_one_out.mean()
    design = np.stack([np.ones(p), dev[a] + dev[b]], 1)  # (P, 2)
    residual = interaction - design @ np.linalg.lstsq(design, interaction, rcond=None)[0]
    mean_square = float(np.sum(residual**2)) / (p - 2)
    return k * (k - 1) / 2 * mean_square * ((k - 2) / k) ** 4 / j.kept


# Corrected variance: the jackknife counts the second-order part twice, so subtract it once; it can remove at
# most half (all of the variance second-order), which bounds the noise of the estimate.
def corrected_variance(j: Jackknife) -> float:
    v = jackknife_variance(j)
    return max(v - second_order_variance(j), v / 2)


def t_interval(value: float, variance: float, dof: int, level: float = LEVEL) -> tuple[float, float]:
    half = float(stdtrit(dof, 0.5 + level / 2)) * math.sqrt(max(variance, 0.0))
    return value - half, value + half


def jackknife_interval(
    value: float,
    statistic: Statistic,
    sizes: tuple[int, ...],
    level: float = LEVEL,
    seed: int = 0,
    extra_variance: float = 0.0,
    groups: int = GROUPS,
    pairs: int = PAIRS,
) -> DistanceInterval:
    """`value` +- t * std, std from the corrected jackknife of `statistic` (plus `extra_variance`: e.g. the
    Monte Carlo variance of a value averaged over random subsets)."""
    j = jackknife(statistic, sizes, groups, pairs, seed)
    variance = corrected_variance(j) + extra_variance
    k = len(j.leave_one_out)
    low, high = t_interval(value, variance, k - 1, level)
    method = f"jackknife, {k} groups, second order from {len(j.pairs)} pairs, t({k - 1})"
    return DistanceInterval(float(value), low, high, math.sqrt(max(variance, 0.0)), method)
