"""MMDisCo LightningModule: a discriminator trained on top of two frozen base models (paper §3;
docs/methods.md#mmdisco).

Receives the built discriminator and wires it to the frozen bases (loaded from their checkpoints), the loss
(`losses.mmdisco_loss`) and guided sampling (`guidance.DiscriminatorGuidance` driving diffusers' DPM-Solver).
The fake-pair cache is its own step: `make fake-cache EXP=<mmdisco experiment>` (`fake_pairs` below,
resumable), which training also runs in `prepare_data` when the cache is missing. The real+fake data module
lives in `data/real_fake.py`.
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from avgen.data.clips import clips, first_clips
from avgen.data.real_fake import BASE_FAKES
from avgen.data.store import METADATA
from avgen.methods.base import Method
from avgen.methods.mmdisco.fake_cache import (
    bases_fingerprint,
    build_fake_cache,
    cache_settings,
    check_settings,
    check_source,
)
from avgen.methods.mmdisco.guidance import DiscriminatorGuidance, TextDiscriminator, drop_prompts
from avgen.methods.mmdisco.losses import (
    check_dsm_reduction,
    denoising_errors,
    logit_gradients,
    mmdisco_loss,
    reduce_discriminator_loss,
)
from avgen.methods.mmdisco.text_bases import TextBases, check_text_dims
from avgen.sampling.samplers import initial_noise, sample


class MMDisCoModule(Method):
    """MMDisCo (docs/methods.md#mmdisco): a discriminator guiding two frozen bases."""

    name = "mmdisco"

    @staticmethod
    def variant(cfg: DictConfig) -> str:
        fakes = cfg.data.get("fakes", "bases")
        # shifted fakes make the discriminator estimate p_real / p_shifted, not p_real / (p_a p_v): a variant
        label = {
            "shifted": "shifted-fakes variant (p_real/p_shifted)",
            "mixed": "mixed-fakes variant (bases' and shifted)",
        }.get(fakes, f"fakes={fakes}")
        parts = [f"head={cfg.model.head}"] + ([label] if fakes != "bases" else [])
        if not cfg.method.get("use_dsm", True):
            parts.append("no L_dsm")
        else:  # runs before the option summed L_dsm; before `normalized`, the default was mean
            reduction = cfg.method.get("dsm_reduction", "sum")
            if reduction != "normalized":
                parts.append({"sum": "L_dsm summed", "mean": "L_dsm per-modality mean"}.get(reduction, reduction))
            if cfg.method.get("dsm_weight", 1.0) != 1.0:
                parts.append(f"lambda={cfg.method.dsm_weight:g}")
        if not cfg.method.get("use_disc", True):
            parts.append("no L_disc")
        elif cfg.method.get("disc_reduction", "mean") != "sum":  # runs before the option: one mean (half Eq. 9)
            parts.append("L_disc mean")
        if not cfg.model.get("video_coords", False):
            parts.append("no video coordinates")
        return ", ".join(parts)

    @staticmethod
    def start_checkpoints(method_cfg: DictConfig) -> list[str]:
        """The bases' checkpoints (two single-modal ones, or one joint one); text bases are local pipelines."""
        bases = method_cfg.get("bases")
        if bases is None or bases.get("text"):
            return []
        if bases.get("joint"):
            return [bases.joint]
        return [bases[m] for m in ("audio", "video") if bases.get(m)]

    @staticmethod
    def upstream_work(cfg: DictConfig) -> list[tuple[str, float | None]]:
        """The fake-pair cache's sampling (counted when it is built); ablation fakes made from real pairs cost
        nothing; pretrained text bases' training is not known."""
        import json

        work: list[tuple[str, float | None]] = []
        if cfg.method.bases.get("text"):
            work.append(("the pretrained text bases", None))
        if cfg.data.get("fakes", "bases") in BASE_FAKES:
            meta = Path(cfg.data.fake_store) / METADATA
            tflops = json.loads(meta.read_text()).get("sampling_tflops") if meta.is_file() else None
            work.append((f"fake pairs {cfg.data.fake_store}", tflops))
        return work

    def baseline_settings(self) -> dict[str, Any]:
        """Guidance off: the independent bases ("no joint"), from the same seeds."""
        return {"scales": {m: 0.0 for m in self.guidance_scales}}

    def extra_scores(self, dm: Any, num: int = 64) -> dict[str, Any]:
        """The discriminator's alignment diagnostics on `num` real test pairs (methods/mmdisco/diagnostics.py)."""
        if self.needs_prompts:  # text-conditioned discriminators need prompts: not measured yet
            return {}
        from avgen.methods.mmdisco.diagnostics import alignment_diagnostics

        real, axes = first_clips(dm.reference_loader(), num, self.modalities, self.device)
        self.eval()
        return {
            "discriminator_diagnostics": alignment_diagnostics(
                self.net, self.bases, real, audio_time_axis=axes["audio"]
            )
        }

    def __init__(
        self,
        net: nn.Module,
        bases: nn.Module,
        optimizer: partial,
        fake_cache: dict[str, Any],
        use_disc: bool = True,
        use_dsm: bool = True,
        dsm_weight: float = 1.0,
        dsm_reduction: str = "normalized",
        disc_reduction: str = "sum",
        guidance_scales: dict[str, float] | None = None,
        guidance_min_alpha: float = 0.0,
        cfg_scales: dict[str, float] | None = None,
        text_dropout: float = 0.1,
    ):
        """net: the discriminator; bases: the frozen bases, built (`bases.build_bases`): a joint denoiser
        (two checkpoints or one joint one) or text bases (`TextBases`, prompted per batch)."""
        super().__init__()
        self.net = net  # the discriminator
        self.needs_prompts = isinstance(bases, TextBases)
        self.cfg_scales, self.text_dropout = dict(cfg_scales or {"audio": 1.0, "video": 1.0}), text_dropout
        if self.needs_prompts:  # out of domain: pretrained text-to-audio / text-to-video pipelines (paper §4.3)
            check_text_dims(net, bases)
        self.bases = bases
        self.modalities = ("audio", "video") if self.needs_prompts else tuple(self.bases.modalities)
        self.optimizer_factory, self.fake_cache = optimizer, dict(fake_cache)
        self.use_disc, self.use_dsm, self.dsm_weight = use_disc, use_dsm, dsm_weight
        check_dsm_reduction(dsm_reduction)  # at construction, not at the first training step
        self.dsm_reduction = dsm_reduction
        reduce_discriminator_loss(torch.zeros(2), 1, disc_reduction)  # checks the name at construction
        self.disc_reduction = disc_reduction
        self.guidance_scales = dict(guidance_scales or {"audio": 1.0, "video": 1.0})
        self.guidance_min_alpha = guidance_min_alpha
        self.logit_gradients = logit_gradients  # compiled by compile_networks
        if not (use_disc or use_dsm):
            raise ValueError("at least one of use_disc and use_dsm must be on")

    def bound(self, prompts: list[str], dropout: float = 0.0, cfg: bool = False):
        """The bases (and the discriminator's text input) for one batch: text bases bound to the batch's
        prompts, each dropped to the empty prompt with probability `dropout` (training); CFG scales when
        sampling. In domain: the bases themselves and no text."""
        if not self.needs_prompts:
            return self.bases, {}
        bases = self.bases.bind(drop_prompts(prompts, dropout), self.cfg_scales if cfg else {})
        return bases, {"text": bases.pooled_text()}

    def compile_networks(self, **options: Any) -> list[str]:
        """The frozen bases' networks (most of the sampling and fake-cache time), the discriminator, and the
        logits-and-input-gradients function that L_dsm, validation and guidance call: compiled whole, the
        input gradient is part of its forward graph, so L_dsm's double backward is a first-order backward of
        that graph (`losses.logit_gradients`)."""
        if self.needs_prompts:
            parts = {"audio": self.bases.audio.unet, "video": self.bases.video.unet}
        elif hasattr(self.bases, "bases"):  # two single-modal checkpoints
            parts = {m: b.net for m, b in self.bases.bases.items()}
        else:  # one joint checkpoint as the black box
            parts = {"joint": self.bases.net}
        for network in parts.values():
            network.compile(**options)
        self.net.compile(**options)
        self.logit_gradients = torch.compile(logit_gradients, **options)
        return [f"bases.{m}" for m in parts] + ["net (the discriminator)", "its logit gradients"]

    def fake_pairs(self, dm, device) -> bool:
        """Sample the fake-pair cache of `dm` (a RealFakeDataModule) from the bases if it is not complete
        (resumable: finished batches are kept); False when the data module needs none (deranged fakes)."""
        if getattr(dm, "fakes", "bases") not in BASE_FAKES:
            return False
        source = bases_fingerprint(self.bases)
        metadata = Path(dm.fake_store) / METADATA
        if metadata.is_file():  # a finished cache: reused only if these bases sampled it with these settings
            recorded = json.loads(metadata.read_text())
            if recorded.get("bases_sha256") is None:
                warnings.warn(f"{dm.fake_store} records no bases (made before caches did): reused", stacklevel=2)
            check_source(Path(dm.fake_store), recorded.get("bases_sha256"), source)
            check_settings(Path(dm.fake_store), recorded.get("cache_settings"), cache_settings(**self.fake_cache))
        else:
            self.bases.to(device)
            prompted = partial(self.bases.bind, cfg_scales=self.cfg_scales) if self.needs_prompts else None
            real = dm.real
            build_fake_cache(
                self.bases,
                real.store,
                {"video": real.video, "audio": real.audio},
                dm.fake_store,
                device=device,
                prompted=prompted,
                source=source,
                **self.fake_cache,
            )
        return True

    def prepare_data(self) -> None:
        # sample on the accelerator, not the CPU; rank 0 only (Lightning), the other ranks wait
        self.fake_pairs(self.trainer.datamodule, self.trainer.strategy.root_device)

    # The frozen bases come from their own files: checkpoints hold the discriminator only (the weight-averaging
    # callback's copy of the current weights included), and loading puts the loaded bases' weights back.
    CHECKPOINT_STATES = ("state_dict", "current_model_state")

    def _bases_state(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.startswith("bases.")}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for key in set(self.CHECKPOINT_STATES) & set(checkpoint):
            checkpoint[key] = {k: v for k, v in checkpoint[key].items() if not k.startswith("bases.")}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # runs before Lightning and the callbacks (weight averaging) read the states: they find them whole
        for key in set(self.CHECKPOINT_STATES) & set(checkpoint):
            checkpoint[key] = {**self._bases_state(), **checkpoint[key]}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return super().load_state_dict({**self._bases_state(), **state_dict}, strict=strict, assign=assign)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        real, fake = batch["real"], batch["fake"]
        x_real = clips(real, self.modalities)
        x_fake = {m: fake[m] for m in self.modalities}
        bases, real_kwargs = self.bound(real["caption"], self.text_dropout)
        _, fake_kwargs = self.bound(fake["caption"], self.text_dropout)
        t = bases.schedules["audio"].sample_timesteps(real["label"].shape[0], self.device)
        loss, terms = mmdisco_loss(
            self.net,
            bases,
            x_real,
            x_fake,
            t,
            use_disc=self.use_disc,
            use_dsm=self.use_dsm,
            dsm_weight=self.dsm_weight,
            dsm_reduction=self.dsm_reduction,
            disc_reduction=self.disc_reduction,
            real_kwargs=real_kwargs,
            fake_kwargs=fake_kwargs,
            gradients=self.logit_gradients,
        )
        logs = {f"train/{k}" if k.endswith("accuracy") else f"train/loss_{k}": v for k, v in terms.items()}
        self.log_dict({"train/loss": loss, **logs}, prog_bar=True, batch_size=x_real["audio"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """How much the guidance reduces the bases' denoising error on held-out real pairs (fixed t and noise
        per batch, so validations are comparable)."""
        g = torch.Generator().manual_seed(batch_idx)
        with torch.inference_mode(False):  # the residual needs input gradients; batches are inference tensors
            x = {m: v.clone() for m, v in clips(batch, self.modalities).items()}
            bases, text = self.bound(batch["caption"])
            t = bases.schedules["audio"].sample_timesteps(x["audio"].shape[0], self.device, generator=g)
            base, guided = denoising_errors(
                self.net, bases, x, t, generator=g, reduction=self.dsm_reduction, gradients=self.logit_gradients, **text
            )
        self.log_dict(
            {
                "val/eps_error_bases": base.mean(),
                "val/eps_error_guided": guided.mean(),
                "val/dsm_gain": (base - guided).mean(),
            },
            batch_size=x["audio"].shape[0],
            sync_dist=True,
        )

    def configure_optimizers(self):
        return self.optimizer_factory(self.net.parameters())

    def generate(
        self,
        shapes: dict[str, tuple[int, ...]],
        steps: int = 20,
        generator: torch.Generator | None = None,
        sampler: str = "dpm_solver",
        scales: dict[str, float] | None = None,
        prompts: list[str] | None = None,
        seeds: list[int] | None = None,
        **sampler_kwargs: Any,
    ) -> dict[str, Tensor]:
        """Joint samples from the bases guided by the discriminator (scales 0 = the "no joint" baseline). Out of
        domain: for `prompts` (one per sample), with CFG on each base and on the discriminator residual."""
        if self.needs_prompts and (prompts is None or len(prompts) != shapes["audio"][0]):
            raise ValueError(f"text bases need one prompt per sample: {shapes['audio'][0]} samples, prompts={prompts}")
        bases, _ = self.bound(prompts or [], cfg=True)
        disc = (
            TextDiscriminator(self.net, bases.pooled_text(), bases.pooled_text(empty=True), self.cfg_scales)
            if self.needs_prompts
            else self.net
        )
        denoiser = DiscriminatorGuidance(
            bases, disc, scales or self.guidance_scales, self.guidance_min_alpha, self.logit_gradients
        )
        return sample(
            denoiser, initial_noise(shapes, generator, self.device, seeds), sampler, steps, generator, **sampler_kwargs
        )
