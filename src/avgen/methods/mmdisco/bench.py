"""MMDisCo speed figures for `avgen bench`, on CMMD-shaped inputs (18 frames of 4x16x16
latents, an 80x112 mel), CPU, medians of `mmdisco_repeats` after one warm-up call, each ratio's two sides
measured in turns (A, B, A, B, ...) so that load drifting during the run hits both alike:

- mmdisco_step_over_base_finetune_step: one discriminator training step (L_disc + L_dsm: the bases' forwards
  under no_grad, the discriminator on real and fake pairs, double backprop, Adam step) over one fine-tuning
  step of both bases (v-prediction loss, forward, backward, Adam step). Paper 0.47-0.68; goal <= 0.5.
- guided_sampling_overhead: guided over unguided sampling time minus 1 (same sampler, steps, noise).
  Paper 0.10-0.22; goal <= 0.15.

The bases are the paper-size dual U-Net (configs/model/<bench.unet_model>) with coupling `none`, one per
modality; the discriminator is configs/model/<bench.discriminator_model>.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from avgen.config import load_config
from avgen.diffusion.denoiser import NetworkDenoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.cmmd.losses import joint_diffusion_loss
from avgen.methods.mmdisco.bases import IndependentBases
from avgen.methods.mmdisco.guidance import DiscriminatorGuidance
from avgen.methods.mmdisco.losses import mmdisco_loss
from avgen.sampling.samplers import sample
from avgen.utils.timing import interleaved

SHAPES = {"video": (18, 4, 16, 16), "audio": (80, 112)}


def bench_mmdisco(cfg: DictConfig) -> dict[str, float]:
    torch.manual_seed(0)
    unet_cfg = load_config("train", [f"model={cfg.unet_model}", "name=bench"]).model
    nets = {
        m: instantiate(unet_cfg, modalities=[m], coupling="none", video_channels=4, audio_channels=80) for m in SHAPES
    }
    disc_cfg = load_config("train", [f"model={cfg.discriminator_model}", "name=bench"]).model
    disc = instantiate(disc_cfg, video_channels=4, audio_channels=80)
    schedule = NoiseSchedule()
    batch = {m: torch.randn(2, *shape) for m, shape in SHAPES.items()}
    fake = {m: torch.randn(2, *shape) for m, shape in SHAPES.items()}
    t = torch.tensor([300, 700])

    base_opt = torch.optim.Adam([p for net in nets.values() for p in net.parameters()], lr=1e-5)

    def finetune_step() -> None:
        base_opt.zero_grad(set_to_none=True)
        loss = sum(
            joint_diffusion_loss(nets[m], schedule, {m: batch[m]}, t, {m: torch.randn_like(batch[m])}).mean()
            for m in SHAPES
        )
        loss.backward()
        base_opt.step()

    # frozen copies: IndependentBases freezes what it holds, and the fine-tuning side trains `nets`
    bases = IndependentBases({m: NetworkDenoiser(copy.deepcopy(net), {m: schedule}) for m, net in nets.items()})
    disc_opt = torch.optim.Adam(disc.parameters(), lr=1e-4)

    def disc_step() -> None:
        disc_opt.zero_grad(set_to_none=True)
        loss, _ = mmdisco_loss(disc, bases, batch, fake, t)
        loss.backward()
        disc_opt.step()

    steps = interleaved({"finetune": finetune_step, "disc": disc_step}, cfg.mmdisco_repeats, warmup=1)
    base_opt.zero_grad(set_to_none=True)

    def sampling(scale: float) -> Callable[[], None]:
        denoiser = DiscriminatorGuidance(bases, disc, {m: scale for m in SHAPES})
        return lambda: sample(
            denoiser, {m: x.clone() for m, x in fake.items()}, "dpm_solver", cfg.mmdisco_sampling_steps
        )

    runs = interleaved({"unguided": sampling(0.0), "guided": sampling(1.0)}, cfg.mmdisco_repeats, warmup=1)
    med = {k: statistics.median(v) for k, v in {**steps, **runs}.items()}
    step_ratios = [d / f for d, f in zip(steps["disc"], steps["finetune"])]
    overheads = [g / u - 1 for g, u in zip(runs["guided"], runs["unguided"])]
    return {
        "mmdisco_disc_step_s": med["disc"],
        "mmdisco_base_finetune_step_s": med["finetune"],
        "mmdisco_step_over_base_finetune_step": med["disc"] / med["finetune"],
        "mmdisco_step_over_base_finetune_step_spread": max(step_ratios) - min(step_ratios),
        "guided_sampling_overhead": med["guided"] / med["unguided"] - 1,
        "guided_sampling_overhead_spread": max(overheads) - min(overheads),
    }
