"""MMDisCo's 2-D toy experiment (paper §4.1, A.3 Table 5; docs/methods.md#mmdisco).

One 1-D base diffusion model is trained on a 5-Gaussian mixture and used as both the "audio" and the
"video" base. A discriminator on (a_t, v_t) is trained against pairs sampled independently from the bases,
then guides them toward a 2-D joint target: in-domain (joint peaks on base modes) or out-of-domain (peaks
the bases cannot produce alone). Variants: no_joint (scale 0), disc (L_disc only), dsm (L_dsm only), both.

NLL estimator (the paper does not state one): the mean negative log-likelihood of generated samples under
the target mixture with each component widened to std `eval_std` = 0.4. Under that density, samples drawn
from the true target (std 0.1) score log 5 + log(2 pi 0.16) + 0.02/0.32 = 1.676 nats, the paper's GT value
(1.67), which is why we believe this is the paper's estimator; the exact-density NLL (std 0.1) is reported
beside it as `nll_exact`.

The loops are plain PyTorch: thousands of steps on a few KB of data, where a Trainer's per-step overhead
would dominate; the losses, guidance and sampler are the same functions the image-scale method uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from avgen.diffusion.conversions import noisy
from avgen.diffusion.denoiser import NetworkDenoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.mmdisco.guidance import DiscriminatorGuidance
from avgen.methods.mmdisco.losses import mmdisco_loss
from avgen.models.toy import PerModality, ToyBase, ToyDiscriminator
from avgen.sampling.samplers import initial_noise, sample

BASE_MEANS = (-3.0, -1.5, 0.0, 1.5, 3.0)
TARGETS = {
    "ind": ((-3.0, 1.5), (-1.5, -3.0), (0.0, 3.0), (1.5, 0.0), (3.0, -1.5)),
    "ood": ((2.25, 2.25), (-2.25, 2.25), (2.25, -2.25), (-2.25, -2.25), (0.0, 0.0)),
}
VARIANTS = ("no_joint", "disc", "dsm", "both")


@dataclass
class ToyConfig:
    std: float = 0.1  # std of every mixture component
    num_base: int = 500  # 1-D training samples of the base
    num_real: int = 500  # joint samples the discriminator sees
    num_fake: int = 500  # independent base pairs, sampled in advance
    num_eval: int = 4000
    timesteps: int = 500  # linear betas 1e-4 .. 0.02
    batch: int = 512
    lr: float = 1e-3
    base_steps: int = 3000
    disc_steps: int = 1500
    dsm_weight: float = 1.0  # lambda in L = L_disc + lambda L_dsm
    sampler: str = "ddim"
    sampler_steps: int = 100
    scales: dict[str, float] = field(default_factory=lambda: {"audio": 1.0, "video": 1.0})
    eval_std: float = 0.4
    seed: int = 0


def mixture(means: Tensor, std: float, n: int, g: torch.Generator) -> Tensor:
    """n samples of an equal-weight isotropic Gaussian mixture with component means (K, D): (n, D)."""
    k = torch.randint(len(means), (n,), generator=g)
    return means[k] + std * torch.randn(n, means.shape[1], generator=g)


def mixture_nll(x: Tensor, means: Tensor, std: float) -> float:
    """Mean -log p(x) under the equal-weight mixture of N(mean_k, std^2 I)."""
    d = x.shape[1]
    sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)  # (N, K)
    log_p = torch.logsumexp(-sq / (2 * std**2), dim=1) - math.log(len(means)) - d / 2 * math.log(2 * math.pi * std**2)
    return float(-log_p.mean())


def _schedule(cfg: ToyConfig) -> NoiseSchedule:
    return NoiseSchedule(num_train_timesteps=cfg.timesteps, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)


def train_base(cfg: ToyConfig, g: torch.Generator) -> ToyBase:
    """eps-prediction DDPM on the 1-D base mixture."""
    schedule, net = _schedule(cfg), ToyBase()
    data = mixture(torch.tensor(BASE_MEANS)[:, None], cfg.std, cfg.num_base, g)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for _ in range(cfg.base_steps):
        x0 = data[torch.randint(len(data), (cfg.batch,), generator=g)]
        t = torch.randint(cfg.timesteps, (cfg.batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        loss = (net(noisy(x0, eps, schedule.abar(t, 2)), t) - eps).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval().requires_grad_(False)


def independent_bases(base: ToyBase, cfg: ToyConfig) -> NetworkDenoiser:
    """The frozen base as both modalities' model: the "no joint" denoiser."""
    schedule = _schedule(cfg)
    return NetworkDenoiser(
        PerModality({"audio": base, "video": base}), {"audio": schedule, "video": schedule}, prediction="eps"
    )


def draw(denoiser, cfg: ToyConfig, n: int, g: torch.Generator) -> Tensor:
    x = initial_noise({"audio": (n, 1), "video": (n, 1)}, g)
    out = sample(denoiser, x, cfg.sampler, cfg.sampler_steps, g, scheduler_kwargs={"clip_sample": False})
    return torch.cat([out["audio"], out["video"]], dim=1)  # (n, 2)


def train_discriminator(
    bases: NetworkDenoiser, real: Tensor, fake: Tensor, variant: str, cfg: ToyConfig, g: torch.Generator
) -> ToyDiscriminator:
    """L_disc, L_dsm or both on (a, v) points; bases frozen, used only through their outputs."""
    disc = ToyDiscriminator()
    opt = torch.optim.Adam(disc.parameters(), lr=cfg.lr)
    split = lambda x: {"audio": x[:, :1], "video": x[:, 1:]}  # noqa: E731  (n, 2) -> two (n, 1)
    for _ in range(cfg.disc_steps):
        r = real[torch.randint(len(real), (cfg.batch,), generator=g)]
        f = fake[torch.randint(len(fake), (cfg.batch,), generator=g)]
        t = torch.randint(cfg.timesteps, (cfg.batch,), generator=g)
        loss, _ = mmdisco_loss(
            disc,
            bases,
            split(r),
            split(f),
            t,
            g,
            use_disc=variant in ("disc", "both"),
            use_dsm=variant in ("dsm", "both"),
            dsm_weight=cfg.dsm_weight,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return disc.eval().requires_grad_(False)


def run(cfg: ToyConfig, progress=print) -> tuple[dict, dict, dict[str, dict[str, Tensor]]]:
    """Both settings, every variant: NLLs under the widened target {setting: {variant: nll}}, the same under the
    exact target, and the samples {setting: {variant: (n_eval, 2)}}."""
    g = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    base = train_base(cfg, g)
    bases = independent_bases(base, cfg)
    progress(f"base trained ({time.perf_counter() - t0:.1f} s)")
    fake = draw(bases, cfg, cfg.num_fake, g)  # independent pairs, sampled in advance
    results: dict[str, dict[str, float]] = {}
    exact: dict[str, dict[str, float]] = {}
    samples: dict[str, dict[str, Tensor]] = {}
    for setting, peaks in TARGETS.items():
        means = torch.tensor(peaks)
        real = mixture(means, cfg.std, cfg.num_real, g)
        samples[setting] = {
            "gt": mixture(means, cfg.std, cfg.num_eval, g),
            "no_joint": draw(bases, cfg, cfg.num_eval, g),
        }
        for variant in VARIANTS[1:]:
            disc = train_discriminator(bases, real, fake, variant, cfg, g)
            samples[setting][variant] = draw(DiscriminatorGuidance(bases, disc, cfg.scales), cfg, cfg.num_eval, g)
            progress(f"{setting}/{variant} done ({time.perf_counter() - t0:.1f} s)")
        results[setting] = {v: mixture_nll(x, means, cfg.eval_std) for v, x in samples[setting].items()}
        exact[setting] = {v: mixture_nll(x, means, cfg.std) for v, x in samples[setting].items()}
    return results, exact, samples
