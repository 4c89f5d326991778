"""Noise schedules, from diffusers schedulers (never re-implemented here).

`NoiseSchedule` reads `alphas_cumprod` from a diffusers scheduler config, so training noise and every
sampler (DDIM, DPM-Solver, ...) share one definition of abar_t. Each modality may have its own schedule,
indexed by one shared discrete t in {0..N-1} (docs/methods.md#conventions).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor, nn

from avgen.diffusion.conversions import append_dims

SAMPLERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpm_solver": DPMSolverMultistepScheduler}


class NoiseSchedule(nn.Module):
    """abar_t of a diffusers DDPM schedule, as a buffer (moves with the module to the right device)."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
    ):
        super().__init__()
        self.config: dict[str, Any] = dict(
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            beta_start=beta_start,
            beta_end=beta_end,
        )
        scheduler = DDPMScheduler(**self.config)
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone().float(), persistent=False)

    @property
    def num_train_timesteps(self) -> int:
        return self.config["num_train_timesteps"]

    def abar(self, t: Tensor, ndim: int) -> Tensor:
        """abar_t per sample, broadcast to a tensor of rank `ndim`."""
        return append_dims(self.alphas_cumprod[t.long()], ndim)

    def coefficients(self, t: Tensor, ndim: int) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) = (sqrt(abar_t), sqrt(1 - abar_t)): x_t = alpha_t x0 + sigma_t eps."""
        abar = self.abar(t, ndim)
        return abar.sqrt(), (1 - abar).sqrt()

    def scheduler_input(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """What this schedule's solvers take as model output: the x0 prediction itself."""
        return x0

    def sample_timesteps(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """t ~ U{0..N-1}, one per example."""
        return torch.randint(0, self.num_train_timesteps, (batch,), generator=generator).to(
            device
        )  # CPU draw: same on any device

    def sampler(self, name: str, steps: int, **kwargs: Any):
        """A diffusers sampling scheduler on this schedule, fed x0 predictions (prediction_type='sample')."""
        if name not in SAMPLERS:
            hint = (
                " (flow samplers need a flow-matching model: method flow_matching)" if name.startswith("flow") else ""
            )
            raise ValueError(f"unknown sampler {name!r} for a diffusion schedule; choose from {sorted(SAMPLERS)}{hint}")
        scheduler = SAMPLERS[name](**self.config, prediction_type="sample", **kwargs)
        scheduler.set_timesteps(steps)
        return scheduler
