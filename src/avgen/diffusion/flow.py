"""The flow-matching schedule: rectified flow's straight path and diffusers' flow solvers
(docs/methods.md#flow-matching).

    x_sigma = (1 - sigma) x0 + sigma eps,   sigma in [0, 1],   t = N * sigma   (N = num_train_timesteps)

`t` is diffusers' flow timestep (a float, sigma scaled by N), so the network's time input, the training
draw and the solvers' timesteps are one number. Training draws sigma from a uniform or a logit-normal
distribution (Esser et al. 2024, SD3 §3.1: more weight on the middle of the path). Sampling uses diffusers'
`FlowMatchEulerDiscreteScheduler` / `FlowMatchHeunDiscreteScheduler`, fed the velocity that the denoiser's
x0 prediction implies, so guidance wrappers and the sampler loop are those of the diffusion methods.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler
from torch import Tensor, nn

from avgen.diffusion.conversions import append_dims, velocity_from_x0

FLOW_SAMPLERS = {"flow_euler": FlowMatchEulerDiscreteScheduler, "flow_heun": FlowMatchHeunDiscreteScheduler}
TIMESTEP_DISTRIBUTIONS = ("uniform", "logit_normal")


class FlowSchedule(nn.Module):
    """sigma(t) = t / N, training draws of t and flow solvers; the flow counterpart of `NoiseSchedule`."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        timestep_distribution: str = "logit_normal",
        logit_mean: float = 0.0,
        logit_std: float = 1.0,
    ):
        super().__init__()
        if timestep_distribution not in TIMESTEP_DISTRIBUTIONS:
            raise ValueError(
                f"timestep_distribution must be one of {TIMESTEP_DISTRIBUTIONS}, got {timestep_distribution!r}"
            )
        self.num_train_timesteps = int(num_train_timesteps)
        self.timestep_distribution, self.logit_mean, self.logit_std = timestep_distribution, logit_mean, logit_std

    def sigma(self, t: Tensor, ndim: int) -> Tensor:
        return append_dims(t.float() / self.num_train_timesteps, ndim)

    def coefficients(self, t: Tensor, ndim: int) -> tuple[Tensor, Tensor]:
        """(alpha, sigma) = (1 - sigma, sigma): x_t = alpha x0 + sigma eps, as for the diffusion schedules."""
        sigma = self.sigma(t, ndim)
        return 1 - sigma, sigma

    def scheduler_input(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """diffusers' flow solvers step with the velocity; the one an x0 prediction implies at x_t."""
        return velocity_from_x0(x_t, x0, self.sigma(t, x_t.ndim).to(x_t.dtype))

    def sample_timesteps(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """Float t = N * sigma per example, sigma ~ U(0, 1) or logit-normal (SD3 §3.1)."""
        if self.timestep_distribution == "uniform":
            sigma = torch.rand(batch, generator=generator)
        else:
            sigma = torch.sigmoid(self.logit_mean + self.logit_std * torch.randn(batch, generator=generator))
        return (sigma * self.num_train_timesteps).to(device)  # CPU draw: the same on any device

    def sampler(self, name: str, steps: int, **kwargs: Any):
        """A diffusers flow solver with `steps` steps (kwargs: e.g. shift=3.0, SD3's time shift)."""
        if name not in FLOW_SAMPLERS:
            raise ValueError(f"unknown sampler {name!r} for a flow-matching model; choose from {sorted(FLOW_SAMPLERS)}")
        scheduler = FLOW_SAMPLERS[name](num_train_timesteps=self.num_train_timesteps, **kwargs)
        scheduler.set_timesteps(steps)
        return scheduler
