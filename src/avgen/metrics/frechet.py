"""Feature-distribution distances (docs/metrics.md): Fréchet distance (FVD, FAD) and kernel distance (KVD).

`FeatureDistances` is a torchmetrics Metric over any feature extractor: it keeps the reference and the
generated features (concatenated across processes under DDP) and computes, in float64,

- the Fréchet distance between Gaussians fitted to the two sets (Heusel et al. 2017; Unterthiner et al.
  2019 for video, Kilgour et al. 2019 for audio);
- the kernel distance: unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged
  over random subsets (Bińkowski et al. 2018; KVD for video);
- optionally the per-sample Fréchet distance (Gui et al. 2024): extractors that embed a clip as a sequence
  of frame embeddings (B, n, d) give each generated clip its own Gaussian, compared with the reference set's.

Intervals (`<name>_interval`) of FD and KD: for the distance's expectation at the sample counts used, from
the second-order-corrected jackknife over clips of both sets (`metrics/distance_intervals.py`); they contain
the value. The per-sample FD, a mean over generated clips, keeps a percentile bootstrap over those clips.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from avgen.metrics.distance_intervals import LEVEL, MIN_SAMPLES, DistanceInterval, jackknife_interval


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of (N, d) features, in float64."""
    f = features.double()
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


# tr((C1 C2)^(1/2)): the sum of square roots of the eigenvalues of C1 C2, which are those of the symmetric
# L^T C2 L for any L L^T = C1 (Cholesky; V W^(1/2) from the eigendecomposition where C1 is singular).
def trace_sqrt_product(cov1: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    factor, info = torch.linalg.cholesky_ex(cov1)
    if info.item() != 0:
        w, v = torch.linalg.eigh(cov1)
        factor = v * w.clamp(min=0).sqrt()
    return torch.linalg.eigvalsh(factor.T @ cov2 @ factor).clamp(min=0).sqrt().sum()


# Fréchet distance between Gaussians: ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) (Dowson & Landau 1982).
def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    return (mu1 - mu2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * trace_sqrt_product(cov1, cov2)


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """k(a, b) = (a.b / d + 1)^3 for (m, d) and (k, d) rows: (m, k)."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def polynomial_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between (m, d) and (m, d) samples with k(a, b) = (a.b / d + 1)^3."""
    m = x.shape[0]
    off = lambda mat: (mat.sum() - mat.diagonal().sum()) / (m * (m - 1))  # noqa: E731
    return off(polynomial_kernel(x, x)) + off(polynomial_kernel(y, y)) - 2 * polynomial_kernel(x, y).mean()


def kernel_subsets(
    n_real: int, n_fake: int, subsets: int, subset_size: int, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The random index subsets of the kernel distance: `subsets` pairs of up to `subset_size` of each set."""
    m = min(subset_size, n_real, n_fake)
    if m < 2:
        raise ValueError(f"the kernel distance needs at least 2 samples per set, got {n_real} and {n_fake}")
    g = torch.Generator().manual_seed(seed)
    return [(torch.randperm(n_real, generator=g)[:m], torch.randperm(n_fake, generator=g)[:m]) for _ in range(subsets)]


def kernel_distance(
    real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of polynomial MMD^2 over `subsets` random subsets of `subset_size` from each set."""
    real, fake = real.double(), fake.double()
    vals = torch.stack(
        [polynomial_mmd(real[i], fake[j]) for i, j in kernel_subsets(len(real), len(fake), subsets, subset_size, seed)]
    )
    return vals.mean(), vals.std(unbiased=False)


class SubsetFrechet:
    """FD between the kept clips of two sets, evaluated for many keep-masks (the jackknife's): from downdated
    moments when the sets have many more frames than dimensions, else from the Gram matrices, so that an
    evaluation costs O(min(d, frames)^3)."""

    def __init__(self, real: torch.Tensor, fake: torch.Tensor):  # (N, n, d) clips of n frames each
        self.clips, self.frames = (len(real), len(fake)), (real.shape[1], fake.shape[1])
        x, y = real.flatten(0, 1).double(), fake.flatten(0, 1).double()
        center = torch.cat([x, y]).mean(0)  # one centre for both sets keeps their mean difference
        self.x, self.y = x - center, y - center
        # Gram matrices where they are no larger than ~the covariances (and left-out covariances near singular)
        self.use_gram = 4 * x.shape[1] >= 3 * min(len(x), len(y))
        if self.use_gram:
            self.gxx, self.gyy, self.gxy = self.x @ self.x.T, self.y @ self.y.T, self.x @ self.y.T
        else:
            self.moments = [(f.sum(0), f.T @ f) for f in (self.x, self.y)]  # sum (d,), second moment (d, d)

    def __call__(self, keep_real: torch.Tensor, keep_fake: torch.Tensor) -> float:
        kx, ky = keep_real.repeat_interleave(self.frames[0]), keep_fake.repeat_interleave(self.frames[1])
        if self.use_gram:
            return float(self._from_gram(kx, ky))
        stats = [_downdated(f, *m, keep) for f, m, keep in zip((self.x, self.y), self.moments, (kx, ky))]
        return float(frechet_distance(*stats[0], *stats[1]))

    def full(self) -> float:
        """The FD of all clips (`frechet_distance` of the pooled frames, in O(min(d, frames)^3))."""
        return self(*(torch.ones(n, dtype=torch.bool) for n in self.clips))

    # FD from Gram matrices: ||mean_x - mean_y||^2 = 1'Gxx1/m^2 + 1'Gyy1/k^2 - 2 1'Gxy1/(mk);
    # tr C = (tr G - 1'G1/m) / (m - 1); tr (Cx Cy)^(1/2) = nuclear norm of the doubly centred Gxy / sqrt((m-1)(k-1)).
    def _from_gram(self, kx: torch.Tensor, ky: torch.Tensor) -> torch.Tensor:
        gxx, gyy, gxy = self.gxx[kx][:, kx], self.gyy[ky][:, ky], self.gxy[kx][:, ky]
        m, k = len(gxx), len(gyy)
        mean_sq = gxx.mean() + gyy.mean() - 2 * gxy.mean()
        traces = (gxx.trace() - gxx.sum() / m) / (m - 1) + (gyy.trace() - gyy.sum() / k) / (k - 1)
        a = gxy - gxy.mean(1, keepdim=True) - gxy.mean(0, keepdim=True) + gxy.mean()  # (m, k)
        square = a @ a.T if m <= k else a.T @ a  # its eigenvalues: the squared singular values of a
        nuclear = torch.linalg.eigvalsh(square).clamp(min=0).sqrt().sum()
        return mean_sq + traces - 2 * nuclear / math.sqrt((m - 1) * (k - 1))


def _downdated(
    f: torch.Tensor, total: torch.Tensor, second: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the kept rows of (N, d) `f` from its full sum and second moment."""
    left = f[~keep]
    m = int(keep.sum())
    s = total - left.sum(0)
    mean = s / m
    return mean, (second - left.T @ left - torch.outer(s, mean)) / (m - 1)


class SubsetKernel:
    """Unbiased polynomial MMD^2 between selected rows of two sets, from kernel matrices computed once
    ((N + M)^2 floats): of the kept rows (the jackknife's, all pairs) or of the kernel distance's subsets."""

    def __init__(self, real: torch.Tensor, fake: torch.Tensor):  # (N, d), (M, d)
        x, y = real.double(), fake.double()
        self.kxx, self.kyy, self.kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)

    # MMD^2_u of the rows with weight 1 (Gretton et al. 2012, eq. 3): within-set sums without the diagonal.
    def mmd(self, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:  # (B, N), (B, M) 0/1 -> (B,)
        m, k = wx.sum(1), wy.sum(1)
        within = lambda mat, w, n: (((w @ mat) * w).sum(1) - w @ mat.diagonal()) / (n * (n - 1))  # noqa: E731
        return within(self.kxx, wx, m) + within(self.kyy, wy, k) - 2 * ((wx @ self.kxy) * wy).sum(1) / (m * k)

    def __call__(self, keep_real: torch.Tensor, keep_fake: torch.Tensor) -> float:
        return float(self.mmd(keep_real[None].double(), keep_fake[None].double())[0])

    def over_subsets(self, subsets: int, subset_size: int, seed: int = 0) -> tuple[float, float]:
        """`kernel_distance` (same subsets, same mean and std) from the stored kernel matrices."""
        n, m = len(self.kxx), len(self.kyy)
        chosen = kernel_subsets(n, m, subsets, subset_size, seed)
        wx, wy = torch.zeros(subsets, n, dtype=torch.float64), torch.zeros(subsets, m, dtype=torch.float64)
        for b, (i, j) in enumerate(chosen):
            wx[b, i], wy[b, j] = 1.0, 1.0
        vals = self.mmd(wx, wy)
        return float(vals.mean()), float(vals.std(unbiased=False))


def frechet_interval(real: torch.Tensor, fake: torch.Tensor, level: float = LEVEL, seed: int = 0) -> DistanceInterval:
    """FD of (N, d) or (N, n, d) clips with its interval (the jackknife leaves out whole clips)."""
    real, fake = (f[:, None] if f.ndim == 2 else f for f in (real, fake))
    statistic = SubsetFrechet(real, fake)
    return jackknife_interval(statistic.full(), statistic, statistic.clips, level, seed)


# FD-infinity (Chong & Forsyth 2020): the FD of random subsets of both sets at `points` fractions evenly spaced
# in [1/4, 1], a least-squares line in 1/fraction, its value at 1/fraction = 0. FD's bias is linear in 1/n only
# where every subset has several times more frames than dimensions: unbiased in the simulation where n/4 >= d,
# far from it below (docs/metrics.md).
def frechet_infinity(real: torch.Tensor, fake: torch.Tensor, points: int = 8, seed: int = 0) -> float:
    real, fake = (f[:, None] if f.ndim == 2 else f for f in (real, fake))
    statistic, g = SubsetFrechet(real, fake), torch.Generator().manual_seed(seed)
    fractions = np.linspace(0.25, 1.0, points)
    fds = [statistic(*(torch.randperm(n, generator=g) < round(f * n) for n in statistic.clips)) for f in fractions]
    return float(np.polyfit(1 / fractions, fds, 1)[1])


def kernel_interval(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[DistanceInterval, float]:
    """KD of (N, d) sets (the mean over `subsets` random subsets, as published) with its interval, and the
    std over subsets. Variance: the jackknife's of the complete statistic plus that of averaging over subsets."""
    statistic = SubsetKernel(real, fake)
    value, std = statistic.over_subsets(subsets, subset_size)  # subsets of seed 0: the value ignores `seed`
    sizes = (len(real), len(fake))
    interval = jackknife_interval(value, statistic, sizes, level, seed, extra_variance=std**2 / subsets)
    return interval, std


class FeatureDistances(Metric):
    """FD / KD (and per-sample FD) between reference and generated inputs in the space of `extractor`.

    `extractor(x)` returns (B, d) clip features or (B, n, d) frame embeddings; the set statistics pool all
    frames (as FAD does with VGGish frames). `prefix` names the outputs: `<prefix>` = FD, `k<prefix[1:]>` = KD
    (fvd -> kvd), `<prefix>_per_sample` = mean per-sample FD, each with `<name>_interval` when `intervals`
    (FD and KD: from 4 clips per set on); with `infinity`, `<prefix>_inf` = FD-infinity (no interval; unbiased
    only where a quarter of each set's frames outnumber the dimensions).
    """

    full_state_update = False
    higher_is_better = False

    def __init__(
        self,
        extractor: Callable[[torch.Tensor], torch.Tensor],
        prefix: str = "fd",
        kernel_subsets: int = 100,
        kernel_subset_size: int = 1000,
        per_sample: bool = False,
        intervals: bool = True,
        bootstrap: int = 200,
        level: float = LEVEL,
        infinity: bool = False,
        seed: int = 0,
        **kwargs,
    ):
        # every rank scores every sample (evaluation/sharding.py gathers them first): nothing to gather here
        super().__init__(**{"sync_on_compute": False, **kwargs})
        self.extractor, self.prefix, self.per_sample, self.infinity = extractor, prefix, per_sample, infinity
        self.intervals, self.level, self.seed = intervals, level, seed
        self.bootstrap = bootstrap  # resamples of the per-sample FD's interval
        self.kernel_subsets, self.kernel_subset_size = kernel_subsets, kernel_subset_size
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    @torch.no_grad()
    def update(self, x: torch.Tensor, real: bool) -> None:
        f = self.extractor(x).float()
        if f.ndim == 2:
            f = f[:, None]  # (B, d) -> (B, 1, d): one "frame" per clip
        (self.real_features if real else self.fake_features).append(f)

    def features(self) -> dict[str, torch.Tensor]:
        """The (N, n, d) reference and generated features: what paired differences between runs need
        (`metrics.stats.paired_distance_difference`)."""
        return {"reference": dim_zero_cat(self.real_features), "generated": dim_zero_cat(self.fake_features)}

    def compute(self) -> dict[str, torch.Tensor]:
        real, fake = dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)  # (N, n, d)
        if len(real) < 2 or len(fake) < 2:
            raise ValueError(
                f"{self.prefix}: needs at least 2 reference and 2 generated clips, got {len(real)} and {len(fake)}"
            )
        kd, rm, fm = f"k{self.prefix[1:]}", real.mean(1), fake.mean(1)  # KD: clip-mean features (N, d)
        if self.intervals and min(len(real), len(fake)) >= MIN_SAMPLES:
            fd = frechet_interval(real, fake, self.level, self.seed)
            kernel, std = kernel_interval(rm, fm, self.kernel_subsets, self.kernel_subset_size, self.level, self.seed)
            f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
            out = {
                self.prefix: f64(fd.value),
                f"{self.prefix}_interval": f64([fd.low, fd.high]),
                kd: f64(kernel.value),
                f"{kd}_interval": f64([kernel.low, kernel.high]),
                f"{kd}_std": f64(std),
            }
        else:
            kd_mean, kd_std = kernel_distance(rm, fm, self.kernel_subsets, self.kernel_subset_size)
            pooled = [gaussian_stats(f.flatten(0, 1)) for f in (real, fake)]  # (N, n, d) -> (N*n, d)
            out = {self.prefix: frechet_distance(*pooled[0], *pooled[1]), kd: kd_mean, f"{kd}_std": kd_std}
        if self.infinity:
            out[f"{self.prefix}_inf"] = torch.tensor(frechet_infinity(real, fake, seed=self.seed), dtype=torch.float64)
        if self.per_sample:
            out.update(self._per_sample(real, fake))
        return out

    def _per_sample(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean over generated clips of each clip's FD to the reference set, with a percentile bootstrap over clips."""
        if fake.shape[1] < 2:
            raise ValueError(f"{self.prefix}_per_sample needs frame embeddings (B, n>=2, d) from the extractor")
        mu_r, cov_r = gaussian_stats(real.flatten(0, 1))
        per_clip = torch.stack([frechet_distance(mu_r, cov_r, *gaussian_stats(clip)) for clip in fake])  # (N,)
        name = f"{self.prefix}_per_sample"
        out = {name: per_clip.mean()}
        if self.intervals and self.bootstrap > 1:
            g = torch.Generator().manual_seed(self.seed)
            means = per_clip[torch.randint(len(per_clip), (self.bootstrap, len(per_clip)), generator=g)].mean(1)
            alpha = (1 - self.level) / 2
            out[f"{name}_interval"] = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
        return out
