"""eps / v / x0 conversions (docs/methods.md#conventions), the one place they live.

With `a = sqrt(abar_t)` and `s = sigma_t = sqrt(1 - abar_t)`:
    x_t = a x0 + s eps,     v = a eps - s x0,     x0 = a x_t - s v,     eps = s x_t + a v.
All functions take `abar` already broadcast to the tensor's rank (see `append_dims`), so audio (B, C, T) and
video (B, F, C, H, W) share them.

Flow matching (rectified flow) uses the straight path with `sigma` in [0, 1] (`diffusion/flow.py`):
    x_sigma = (1 - sigma) x0 + sigma eps,     u = dx/dsigma = eps - x0,     x0 = x_sigma - sigma u.
Its signal and noise coefficients (1 - sigma, sigma) play the roles of (sqrt(abar), sigma_t) above.
"""

from __future__ import annotations

from torch import Tensor


def append_dims(x: Tensor, ndim: int) -> Tensor:
    """(B,) -> (B, 1, ..., 1) with `ndim` dims in total: per-sample scalars for tensors of any rank."""
    if x.ndim > ndim:
        raise ValueError(f"cannot broadcast a {x.ndim}-d tensor to {ndim} dims")
    return x.reshape(*x.shape, *([1] * (ndim - x.ndim)))


def x0_from_v(x_t: Tensor, v: Tensor, abar: Tensor) -> Tensor:
    return abar.sqrt() * x_t - (1 - abar).sqrt() * v


def eps_from_v(x_t: Tensor, v: Tensor, abar: Tensor) -> Tensor:
    return (1 - abar).sqrt() * x_t + abar.sqrt() * v


def x0_from_eps(x_t: Tensor, eps: Tensor, abar: Tensor) -> Tensor:
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def eps_from_x0(x_t: Tensor, x0: Tensor, abar: Tensor) -> Tensor:
    return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()


def v_from_x0_eps(x0: Tensor, eps: Tensor, abar: Tensor) -> Tensor:
    return abar.sqrt() * eps - (1 - abar).sqrt() * x0


def noisy(x0: Tensor, eps: Tensor, abar: Tensor) -> Tensor:
    """x_t = sqrt(abar) x0 + sigma eps."""
    return abar.sqrt() * x0 + (1 - abar).sqrt() * eps


# Rectified flow (Liu et al. 2023; Lipman et al. 2023): the straight path between data and noise
def flow_velocity(x0: Tensor, eps: Tensor) -> Tensor:
    """The path's velocity u = d x_sigma / d sigma = eps - x0 (diffusers' flow-matching convention)."""
    return eps - x0


def x0_from_velocity(x_t: Tensor, u: Tensor, sigma: Tensor) -> Tensor:
    return x_t - sigma * u


def velocity_from_x0(x_t: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
    """The velocity that a prediction x0 implies at x_sigma: (x_sigma - x0) / sigma (sigma > 0)."""
    return (x_t - x0) / sigma


# What a network predicts -> its x0 prediction, from x_t and the schedule's (alpha_t, sigma_t) at t. One table,
# so a new parameterisation is one entry (a diffusion schedule's alpha is sqrt(abar); a flow's is 1 - sigma).
PREDICTIONS = {
    "v": lambda x_t, out, alpha, sigma: alpha * x_t - sigma * out,  # x0_from_v
    "eps": lambda x_t, out, alpha, sigma: (x_t - sigma * out) / alpha,  # x0_from_eps
    "velocity": lambda x_t, out, alpha, sigma: x0_from_velocity(x_t, out, sigma),
    "x0": lambda x_t, out, alpha, sigma: out,
}
