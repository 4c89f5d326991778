"""The contracts of what `avgen train` trains, checked when a class is defined (docs/adding_a_method.md).

- `Trainable`: anything `avgen train` fits and reports (a method, or a helper model such as the MelGAN
  vocoder): a `name` for reports, `training_step` and `configure_optimizers` (Lightning), logging
  `train/loss`; optionally `variant(cfg)`, `extra_scores(dm)`, `start_checkpoints(method_cfg)` and
  `compile_networks(**options)`.
- `Method`: a generative method, scored by evaluation. It adds `generate(shapes, steps=..., sampler=...,
  seeds=None, **kwargs) -> {modality: tensor}` (samples in the store's representation; `seeds`, one per
  sample, fix each sample's noise from its own seed, `sampling.samplers.initial_noise`, so that runs
  evaluated with one seed are paired sample by sample) and `variant(cfg)`; `modalities` (set by the class or
  its constructor: `("audio", "video")` for a joint model; single-modal ones, MMDisCo's bases, are scored
  through the runs that join them); `conditional = True` if `generate(..., known={modality: x0},
  guidance_scale=...)` generates the other modality (v2a / a2v); `needs_prompts = True` if `generate` takes
  `prompts=[...]`; `baseline_settings()`: keyword arguments of `generate` that give the no-coupling
  baseline from the same weights (MMDisCo: guidance scales 0), scored on the same seeds, or None.
- `DenoisingMethod`: a method whose one network is trained to denoise (CMMD, flow matching). It owns the
  network, its schedule, the shared denoiser (`diffusion.denoiser.NetworkDenoiser`, chosen by the class's
  `prediction`, a key of `diffusion.conversions.PREDICTIONS`), `generate` and `validation_step`; a
  subclass provides `denoising_loss(x0, t, noise) -> (B,)` (its training loss without method-specific
  terms) and `training_step`.

A subclass that misses a required part fails at its `class` statement with a TypeError naming the class
and what is missing, not at the first training step.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import partial
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from avgen.data.clips import clips
from avgen.diffusion.conversions import PREDICTIONS
from avgen.diffusion.denoiser import NetworkDenoiser
from avgen.sampling.samplers import generate


def _provided(cls: type, name: str) -> bool:
    """Whether `cls` gets `name` from a contract class (not Lightning's defaults) and not as a placeholder
    (`abstractmethod` marks the parts a subclass must write)."""
    for k in cls.__mro__:
        if name in vars(k):
            return issubclass(k, Trainable) and not getattr(vars(k)[name], "__isabstractmethod__", False)
    return False


class Trainable(L.LightningModule):
    name: ClassVar[str] = ""  # how reports, W&B job types and metrics.json name it
    modalities: tuple[str, ...] = ()  # what it generates; () = no generative modality (scored by extra_scores)
    conditional: bool = False
    needs_prompts: bool = False
    REQUIRED: ClassVar[tuple[str, ...]] = ("training_step", "configure_optimizers")

    def tokens_per_sample(self, batch: dict[str, Any]) -> int | None:
        """A transformer's tokens per training sample (the throughput logs' `perf/tokens_per_s`); None for
        networks that do not work on tokens."""
        return None

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        missing = [f"`{m}`" for m in cls.REQUIRED if not _provided(cls, m)]
        if not (isinstance(cls.name, str) and cls.name.isidentifier() and cls.name.islower()):
            missing.insert(0, f"`name` (a lower-case identifier, got {cls.name!r})")
        missing += cls._contract_errors()
        if missing:
            raise TypeError(
                f"{cls.__qualname__} does not implement the {_contract(cls)} contract "
                f"(avgen.methods.base): missing {', '.join(missing)}"
            )

    @classmethod
    def _contract_errors(cls) -> list[str]:
        return []

    @property
    def joint(self) -> bool:
        return set(self.modalities) == {"audio", "video"}

    @staticmethod
    def variant(cfg: DictConfig) -> str:
        """What tells runs of this class apart in a comparison (e.g. coupling and eta, the head)."""
        return ""

    @staticmethod
    def start_checkpoints(method_cfg: DictConfig) -> list[str]:
        """Checkpoints a run starts from (a fine-tune's parent, frozen bases): `avgen train` names the
        experiments that make the missing ones, and the pipeline trains them first."""
        return []

    @staticmethod
    def upstream_work(cfg: DictConfig) -> list[tuple[str, float | None]]:
        """Compute that made this run's inputs other than the checkpoints it starts from, as (what, TFLOPs
        or None where it was not counted): e.g. MMDisCo's fake pairs sampled from its bases."""
        return []

    def extra_scores(self, dm: Any) -> dict[str, Any]:
        """Its own quality figures for metrics.json (the vocoder's log-mel error), or {}."""
        return {}

    def baseline_settings(self) -> dict[str, Any] | None:
        return None

    def compile_networks(self, **options: Any) -> list[str]:
        """torch.compile in place (`nn.Module.compile`: parameter names and checkpoints unchanged)."""
        self.net.compile(**options)
        return ["net"]


class Method(Trainable, abstract=True):
    REQUIRED = (*Trainable.REQUIRED, "generate", "variant")

    @abstractmethod
    def generate(self, shapes: dict[str, tuple[int, ...]], **kwargs: Any) -> dict[str, Tensor]:
        """Samples in the store's representation, {modality: (B, ...)}; `seeds` fix each sample's noise."""

    @staticmethod
    @abstractmethod
    def variant(cfg: DictConfig) -> str:
        """What tells runs of this method apart in a comparison (e.g. coupling and eta, the head)."""


class DenoisingMethod(Method, abstract=True):
    prediction: ClassVar[str | None] = None  # what the network outputs: a key of diffusion.conversions.PREDICTIONS
    default_sampler: ClassVar[str] = "ddim"
    REQUIRED = (*Method.REQUIRED, "denoising_loss")

    @classmethod
    def _contract_errors(cls) -> list[str]:
        if cls.prediction not in PREDICTIONS:
            return [f"`prediction` (one of {', '.join(PREDICTIONS)}, got {cls.prediction!r})"]
        return []

    def __init__(self, net: nn.Module, schedule: nn.Module, optimizer: partial):
        super().__init__()
        self.net, self.schedule, self.optimizer_factory = net, schedule, optimizer
        # a single-branch network (coupling none) trains a single-modal model (MMDisCo's bases)
        self.modalities = tuple(getattr(net, "modalities", ("audio", "video")))
        self.denoiser = NetworkDenoiser(net, {m: schedule for m in self.modalities}, prediction=self.prediction)

    def configure_model(self) -> None:
        """Under `trainer=fsdp` (a device mesh exists): the network sharded with FSDP2 (utils/sharding.py)."""
        if self.device_mesh is None:
            return
        from avgen.utils.sharding import shard_network

        shard_network(
            self.net, self.device_mesh["data_parallel"], getattr(self.trainer.strategy, "param_dtype", "bf16")
        )

    def training_draws(self, batch: dict[str, Any], x0: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The timestep and noise of each training sample, (B,) and {modality: like x0}.

        When the run seeds its steps (callbacks.reliability.StepSeeding sets `noise_seed`) and the batch names
        its store rows, sample i draws from its own generator keyed by (seed, step, row): the same wherever it
        lands, so 1 process x batch 16 and 2 x 8 train alike (docs/performance.md#world-size-invariance).
        Otherwise (a module stepped by hand) from the global generator."""
        b = next(iter(x0.values())).shape[0]
        key, rows = getattr(self, "noise_seed", None), batch.get("row")
        if key is None or rows is None:
            t = self.schedule.sample_timesteps(b, self.device)
            return t, {m: torch.randn_like(x) for m, x in x0.items()}
        ts, noise = [], {m: [] for m in x0}
        for row in rows.tolist():
            g = torch.Generator().manual_seed((key + row * 0x94D049BB133111EB) % 2**63)
            ts.append(self.schedule.sample_timesteps(1, torch.device("cpu"), generator=g))
            for m in sorted(x0):  # drawn on the CPU: the same on any device
                noise[m].append(torch.randn(x0[m].shape[1:], generator=g))
        return torch.cat(ts).to(self.device), {m: torch.stack(v).to(x0[m]) for m, v in noise.items()}

    @abstractmethod
    def denoising_loss(self, x0: dict[str, Tensor], t: Tensor, noise: dict[str, Tensor]) -> Tensor:
        """Per-sample loss (B,) of denoising `x0` noised with `noise` at `t`."""

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        x0 = clips(batch, self.modalities)
        g = torch.Generator().manual_seed(batch_idx)  # the same t and noise at every validation
        t = self.schedule.sample_timesteps(batch["label"].shape[0], self.device, generator=g)
        noise = {m: torch.randn(x.shape, generator=g).to(x) for m, x in x0.items()}
        self.log("val/loss", self.denoising_loss(x0, t, noise).mean(), sync_dist=True, batch_size=t.shape[0])

    @torch.no_grad()
    def generate(
        self,
        shapes: dict[str, tuple[int, ...]],
        steps: int = 50,
        generator: torch.Generator | None = None,
        known: dict[str, Tensor] | None = None,
        guidance_scale: float = 0.0,
        sampler: str | None = None,
        seeds: list[int] | None = None,
        **sampler_kwargs: Any,
    ) -> dict[str, Tensor]:
        """Joint samples, or conditional ones (v2a / a2v by reconstruction guidance, CMMD Eq. 3) when `known`
        holds one modality's x0. `seeds`: one per sample. Shapes are free in time: pass twice the training
        length for double-length generation."""
        return generate(
            self.denoiser,
            shapes,
            self.device,
            steps,
            generator,
            known,
            guidance_scale,
            sampler or self.default_sampler,
            seeds,
            **sampler_kwargs,
        )


def _contract(cls: type) -> str:
    return next(k.__name__ for k in cls.__mro__ if k in (DenoisingMethod, Method, Trainable))
