"""Feature-distribution distances (docs/metrics.md): Fréchet distance (FVD, FAD) and kernel distance (KVD).

`FeatureDistances` is a torchmetrics Metric over any feature extractor: it keeps the reference and the
generated features (concatenated across processes under DDP) and computes, in float64,

- the Fréchet distance between Gaussians fitted to the two sets (Heusel et al. 2017; Unterthiner et al.
  2019 for video, Kilgour et al. 2019 for audio);
- the kernel distance: unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged
  over random subsets (Bińkowski et al. 2018; KVD for video);
- optionally the per-sample Fréchet distance (Gui et al. 2024): extractors that embed a clip as a sequence
  of frame embeddings (B, n, d) give each generated clip its own Gaussian, compared with the reference set's.

Intervals (`<name>_interval`): the generated set is resampled with replacement (`bootstrap` times) and
scored against the *fixed* reference features, so the interval says how much the distance depends on which
samples the model happened to draw, not on the reference's own sampling (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of (N, d) features, in float64."""
    f = features.double()
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)).

    tr((C1 C2)^(1/2)) is the sum of square roots of the eigenvalues of C1 C2, which are real and >= 0 for
    covariance matrices (up to round-off, clamped here); no matrix square root is formed."""
    eig = torch.linalg.eigvals(cov1 @ cov2).real.clamp(min=0)
    return (mu1 - mu2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * eig.sqrt().sum()


def polynomial_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between (m, d) and (m, d) samples with k(a, b) = (a.b / d + 1)^3."""
    d, m = x.shape[1], x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda mat: (mat.sum() - mat.diagonal().sum()) / (m * (m - 1))  # noqa: E731
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def kernel_distance(
    real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of polynomial MMD^2 over `subsets` random subsets of `subset_size` from each set."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"the kernel distance needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    g = torch.Generator().manual_seed(seed)
    real, fake = real.double(), fake.double()
    vals = torch.stack(
        [
            polynomial_mmd(
                real[torch.randperm(len(real), generator=g)[:m]], fake[torch.randperm(len(fake), generator=g)[:m]]
            )
            for _ in range(subsets)
        ]
    )
    return vals.mean(), vals.std(unbiased=False)


class FeatureDistances(Metric):
    """FD / KD (and per-sample FD) between reference and generated inputs in the space of `extractor`.

    `extractor(x)` returns (B, d) clip features or (B, n, d) frame embeddings; the set statistics pool all
    frames (as FAD does with VGGish frames). `prefix` names the outputs: `<prefix>` = FD, `k<prefix[1:]>` = KD
    (fvd -> kvd), `<prefix>_per_sample` = mean per-sample FD.
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
        bootstrap: int = 200,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.extractor, self.prefix, self.per_sample = extractor, prefix, per_sample
        self.bootstrap, self.seed = bootstrap, seed
        self.kernel_subsets, self.kernel_subset_size = kernel_subsets, kernel_subset_size
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    @torch.no_grad()
    def update(self, x: torch.Tensor, real: bool) -> None:
        f = self.extractor(x).float()
        if f.ndim == 2:
            f = f[:, None]  # (B, d) -> (B, 1, d): one "frame" per clip
        (self.real_features if real else self.fake_features).append(f)

    def compute(self) -> dict[str, torch.Tensor]:
        real, fake = dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)  # (N, n, d)
        if len(real) < 2 or len(fake) < 2:
            raise ValueError(
                f"{self.prefix}: needs at least 2 reference and 2 generated clips, got {len(real)} and {len(fake)}"
            )
        mu_r, cov_r = gaussian_stats(real.flatten(0, 1))  # (N, n, d) -> (N*n, d)
        mu_f, cov_f = gaussian_stats(fake.flatten(0, 1))
        kd = f"k{self.prefix[1:]}"
        out = {self.prefix: frechet_distance(mu_r, cov_r, mu_f, cov_f)}
        kd_mean, kd_std = kernel_distance(real.mean(1), fake.mean(1), self.kernel_subsets, self.kernel_subset_size)
        out.update({kd: kd_mean, f"{kd}_std": kd_std})
        if self.per_sample:
            if fake.shape[1] < 2:
                raise ValueError(f"{self.prefix}_per_sample needs frame embeddings (B, n>=2, d) from the extractor")
            per_clip = torch.stack([frechet_distance(mu_r, cov_r, *gaussian_stats(clip)) for clip in fake])
            out[f"{self.prefix}_per_sample"] = per_clip.mean()
        if self.bootstrap > 1:
            g = torch.Generator().manual_seed(self.seed)
            draws = [torch.randint(len(fake), (len(fake),), generator=g) for _ in range(self.bootstrap)]
            boot = {
                self.prefix: [frechet_distance(mu_r, cov_r, *gaussian_stats(fake[i].flatten(0, 1))) for i in draws],
                kd: [
                    kernel_distance(real.mean(1), fake.mean(1)[i], 10, self.kernel_subset_size, seed=k)[0]
                    for k, i in enumerate(draws)
                ],
            }
            if self.per_sample:
                boot[f"{self.prefix}_per_sample"] = [per_clip[i].mean() for i in draws]
            for name, values in boot.items():
                out[f"{name}_interval"] = torch.quantile(
                    torch.stack(values).double(), torch.tensor([0.025, 0.975], dtype=torch.float64)
                )
        return out
