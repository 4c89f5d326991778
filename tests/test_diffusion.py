"""Schedules come from diffusers; conversions are exact; samplers recover a known x0."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from avgen.diffusion.conversions import (
    append_dims,
    eps_from_v,
    eps_from_x0,
    noisy,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)
from avgen.diffusion.denoiser import Denoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.sampling.samplers import initial_noise, sample


def test_schedule_is_diffusers_cosine():
    s = NoiseSchedule()
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    torch.testing.assert_close(s.alphas_cumprod, ref.alphas_cumprod.float())
    t = torch.tensor([0, 500, 999])
    x0, eps = torch.randn(3, 2, 5), torch.randn(3, 2, 5)
    abar = s.abar(t, 3)
    # our conversions agree with diffusers' add_noise and get_velocity
    torch.testing.assert_close(noisy(x0, eps, abar), ref.add_noise(x0, eps, t), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v_from_x0_eps(x0, eps, abar), ref.get_velocity(x0, eps, t), rtol=1e-5, atol=1e-5)


def test_conversions_round_trip_for_any_rank():
    for shape in [(4, 3, 7), (4, 5, 3, 2, 2)]:
        x0, eps = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
        abar = append_dims(torch.tensor([0.99, 0.5, 0.1, 0.001], dtype=torch.float64), len(shape))
        x_t, v = noisy(x0, eps, abar), v_from_x0_eps(x0, eps, abar)
        torch.testing.assert_close(x0_from_v(x_t, v, abar), x0)
        torch.testing.assert_close(eps_from_v(x_t, v, abar), eps)
        torch.testing.assert_close(x0_from_eps(x_t, eps, abar), x0)
        torch.testing.assert_close(eps_from_x0(x_t, x0, abar), eps)


class ConstantDenoiser(Denoiser):
    """The exact denoiser of a point mass at `value`: predicts x0 = value whatever the input."""

    def __init__(self, value: dict[str, torch.Tensor]):
        super().__init__()
        self.value = value
        self.schedules = torch.nn.ModuleDict({m: NoiseSchedule() for m in value})

    def forward(self, x, t):
        return {m: self.value[m].expand_as(x[m]) for m in x}


def test_ddim_and_dpm_solver_land_on_the_point_mass():
    target = {"audio": torch.full((1, 2, 8), 0.3), "video": torch.full((1, 3, 1, 4, 4), -0.2)}
    den = ConstantDenoiser(target)
    x = initial_noise({"audio": (2, 2, 8), "video": (2, 3, 1, 4, 4)}, torch.Generator().manual_seed(0))
    # DPM-Solver (not ++) stops at sigma_min (~0.006 for the cosine schedule), leaving that much noise
    for sampler, kwargs, atol in [
        ("ddim", {}, 2e-3),
        ("dpm_solver", {"solver_order": 3, "algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min"}, 0.04),
        ("dpm_solver", {"solver_order": 2, "algorithm_type": "dpmsolver++"}, 2e-3),
    ]:
        out = sample(den, x, sampler, steps=20, scheduler_kwargs=kwargs)
        for m in target:
            torch.testing.assert_close(out[m], target[m].expand_as(out[m]), atol=atol, rtol=0)
