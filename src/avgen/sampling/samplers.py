"""Samplers: plain functions of a denoiser (see `avgen.diffusion.denoiser`), driving diffusers schedulers.

Each modality gets its own diffusers scheduler built on its own schedule (fed what that scheduler steps
with: the x0 prediction for diffusion solvers, the implied velocity for flow solvers), and all are stepped
at the same shared t. Guidance is applied by wrapping the denoiser, never here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avgen.diffusion.denoiser import Denoiser
from avgen.sampling.cost import record
from avgen.sampling.guidance import ReconstructionGuidance


def initial_noise(
    shapes: dict[str, tuple[int, ...]],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    seeds: list[int] | None = None,
) -> dict[str, Tensor]:
    """Pure noise per modality. With `seeds` (one per sample), sample i is drawn from its own generator
    seeded with seeds[i] (modalities in sorted order), so a sample index gets the same noise whatever the
    batch size or the run: two runs evaluated with one seed see the same noise (paired comparisons).
    Drawn on the CPU, then moved: the same seed gives the same samples on every device."""
    if seeds is None:
        return {m: torch.randn(shape, generator=generator).to(device) for m, shape in shapes.items()}
    if any(shape[0] != len(seeds) for shape in shapes.values()):
        raise ValueError(f"one seed per sample: {len(seeds)} seeds for shapes {shapes}")
    per_sample = []
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        per_sample.append({m: torch.randn(shapes[m][1:], generator=g) for m in sorted(shapes)})
    return {m: torch.stack([s[m] for s in per_sample]).to(device) for m in shapes}


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    x: dict[str, Tensor],
    sampler: str = "ddim",
    steps: int = 50,
    generator: torch.Generator | None = None,
    progress: bool = False,
    scheduler_kwargs: dict[str, Any] | None = None,
    step_kwargs: dict[str, Any] | None = None,
) -> dict[str, Tensor]:
    """Run `steps` solver steps from pure noise `x` (dict per modality) to samples.

    sampler: "ddpm" (ancestral), "ddim" (DDIM, Song et al. 2021; `step_kwargs={"eta": 0.0}` is deterministic)
    or "dpm_solver"
    (DPM-Solver / DPM-Solver++ via `scheduler_kwargs={"algorithm_type": ..., "solver_order": ...}`); on a flow
    schedule "flow_euler" or "flow_heun" (`scheduler_kwargs={"shift": ...}`).
    """
    schedulers = {
        m: denoiser.schedules[m].sampler(sampler, steps, **(scheduler_kwargs or {})) for m in denoiser.modalities
    }
    timesteps = schedulers[denoiser.modalities[0]].timesteps
    step_kwargs = dict(step_kwargs or {})
    if sampler in ("ddim", "ddpm") and generator is not None:
        step_kwargs.setdefault("generator", generator)
    x = dict(x)
    ref = next(iter(x.values()))
    for t in tqdm(timesteps, desc=f"{sampler} sampling", disable=not progress, leave=False):
        # long t for diffusion solvers, diffusers' float flow timestep for flow solvers
        batch_t = torch.full((ref.shape[0],), t.item(), device=ref.device, dtype=timesteps.dtype)
        x0 = denoiser(x, batch_t)
        record("nfe", ref.shape[0])  # one network function evaluation per sample (sampling/cost.py)
        x = {
            m: schedulers[m]
            .step(denoiser.schedules[m].scheduler_input(x0[m], x[m], batch_t), t, x[m], **step_kwargs)
            .prev_sample
            for m in denoiser.modalities
        }
    return x


@torch.no_grad()
def generate(
    denoiser: Denoiser,
    shapes: dict[str, tuple[int, ...]],
    device: torch.device,
    steps: int = 50,
    generator: torch.Generator | None = None,
    known: dict[str, Tensor] | None = None,
    guidance_scale: float = 5.0,
    sampler: str = "ddim",
    seeds: list[int] | None = None,
    guidance_norm: str = "balanced",
    **sampler_kwargs: Any,
) -> dict[str, Tensor]:
    """Joint samples of a joint denoiser, or conditional ones (v2a / a2v by reconstruction guidance, CMMD
    Eq. 3) when `known` holds one modality's x0; the `generate` of every method with a joint network.
    `seeds`: one per sample, each sample's noise from its own seed (`initial_noise`)."""
    x = initial_noise(shapes, generator, device, seeds)
    if known:  # seeded: the known modality's fixed noise is that sample's own draw for it
        eps = x[next(iter(known))] if seeds is not None else None
        denoiser = ReconstructionGuidance(denoiser, known, guidance_scale, generator, eps_known=eps, norm=guidance_norm)
    return sample(denoiser, x, sampler, steps, generator, **sampler_kwargs)
