"""Reconstruction guidance (CMMD Eq. 3) with a denoiser that is exact for a Gaussian pair: the strength of a
given lambda must not depend on the two modalities' sizes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avgen.diffusion.denoiser import Denoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.sampling.guidance import ReconstructionGuidance
from avgen.sampling.samplers import generate


class GaussianDenoiser(Denoiser):
    """x0_hat = E[x0 | x_t] for a zero-mean joint Gaussian with covariance `cov` over (audio, video) flattened."""

    def __init__(self, cov: torch.Tensor, n_audio: int):
        super().__init__()
        self.cov, self.n = cov, n_audio
        schedule = NoiseSchedule()
        self.schedules = nn.ModuleDict({"audio": schedule, "video": schedule})

    def forward(self, x, t):
        b = x["audio"].shape[0]
        flat = torch.cat([x["audio"].reshape(b, -1), x["video"].reshape(b, -1)], 1).double()
        abar = self.schedules["audio"].alphas_cumprod[t[0].long()].double()  # one t for the batch
        eye = torch.eye(len(self.cov), dtype=torch.float64)
        gain = abar.sqrt() * self.cov @ torch.linalg.inv(abar * self.cov + (1 - abar) * eye)  # Gaussian posterior mean
        out = (flat @ gain.T).to(x["audio"].dtype)
        return {"audio": out[:, :self.n].reshape(x["audio"].shape), "video": out[:, self.n:].reshape(x["video"].shape)}


def gaussian_pair(n: int, k: int, information: float = 99.0) -> torch.Tensor:
    """Covariance of audio a (n values, unit variance) and video v (k values per audio value, v = rho a + noise),
    with rho chosen so that each audio value's posterior variance given its k video values is 1 / (1 + information)
    whatever k: an exact conditional sampler has the same error at every size ratio."""
    rho = math.sqrt(information / (k + information))
    cov = torch.eye(n + n * k, dtype=torch.float64)
    for i in range(n):
        block = list(range(n + i * k, n + (i + 1) * k))
        for j in block:
            cov[i, j] = cov[j, i] = rho
            for j2 in block:
                if j2 != j:
                    cov[j, j2] = rho ** 2
    return cov


def v2a_error(k: int, scale: float, norm: str, n: int = 8, num: int = 64) -> float:
    cov = gaussian_pair(n, k)
    g = torch.Generator().manual_seed(0)
    x = (torch.linalg.cholesky(cov) @ torch.randn(len(cov), num, generator=g, dtype=torch.float64)).T.float()
    audio, video = x[:, :n].reshape(num, 1, n), x[:, n:].reshape(num, 1, n * k)
    out = generate(GaussianDenoiser(cov, n), {"audio": (num, 1, n), "video": (num, 1, n * k)}, "cpu", 50,
                   known={"video": video}, guidance_scale=scale, guidance_norm=norm, seeds=list(range(num)),
                   scheduler_kwargs={"clip_sample": False}, step_kwargs={"eta": 0.0})
    torch.testing.assert_close(out["video"], video)  # the condition is returned as given
    return float((out["audio"] - audio).pow(2).mean())


def test_balanced_guidance_means_the_same_at_any_size_ratio():
    # measured (n=8, 64 pairs): sum 0.028 (1:1) vs 0.111 (24:1, over-driven); balanced 0.028 vs 0.025;
    # replacement (lambda 0) 0.210 and 0.030; an exact posterior sampler ~0.02 at both
    equal = v2a_error(1, 5.0, "balanced")
    assert v2a_error(1, 5.0, "sum") == pytest.approx(equal, rel=1e-5)  # equal sizes: Eq. 3 unchanged
    assert v2a_error(24, 5.0, "sum") > 2.5 * equal                      # the sum over-drives at 24:1 ...
    assert abs(v2a_error(24, 5.0, "balanced") - equal) < 0.25 * equal   # ... the balanced error does not
    assert equal < 0.05


def test_unknown_guidance_norm_is_refused():
    den = GaussianDenoiser(gaussian_pair(2, 1), 2)
    with pytest.raises(ValueError, match="guidance norm"):
        ReconstructionGuidance(den, {"video": torch.zeros(1, 1, 2)}, norm="mean")
