"""Flow-matching LightningModule: a joint network trained on the straight path between data and noise
(docs/methods.md#flow-matching), sampled with diffusers' flow solvers through the shared denoiser interface.

It receives built parts (network, flow schedule, optimizer partial) and only wires them. Any joint network
with the `net(x: {modality: x_t}, t) -> {modality: output}` interface fits; the dual-stream transformer
(`models/transformers/dual_dit.py`) is the one its experiments use. Conditional generation (v2a / a2v)
inpaints the known modality along the path, with reconstruction guidance on top (guidance_scale > 0).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from avgen.data.clips import clips
from avgen.diffusion.flow import FlowSchedule
from avgen.diffusion.weighting import check_weighting
from avgen.methods.base import DenoisingMethod
from avgen.methods.flow_matching.losses import flow_matching_loss
from avgen.models.transformers.dual_dit import DualStreamDiT


def linear_warmup(step: int, steps: int) -> float:
    """Learning-rate factor: linear from 1/steps to 1 over the first `steps` steps, then 1."""
    return min(1.0, (step + 1) / steps) if steps > 0 else 1.0


class FlowMatchingModule(DenoisingMethod):
    """Joint flow matching (docs/methods.md#flow-matching); with coupling none, the no-coupling baseline."""

    name = "flow_matching"
    conditional = True  # v2a / a2v: the known modality inpainted along the path (+ reconstruction guidance)
    prediction = "velocity"  # the flow velocity eps - x0
    default_sampler = "flow_euler"

    @staticmethod
    def variant(cfg: DictConfig) -> str:
        parts = [f"coupling={cfg.model.get('coupling')}", f"t~{cfg.method.schedule.get('timestep_distribution')}"]
        two = len(cfg.model.get("modalities", ["audio", "video"])) == 2
        if two and cfg.method.get("modality_weighting", "per_modality") != "joint":  # before the option: per modality
            parts.append("weighting=per_modality")
        if "modalities" in cfg.model and len(cfg.model.modalities) == 1:
            parts.insert(0, f"{cfg.model.modalities[0]} only")
        return ", ".join(parts)

    def __init__(
        self,
        net: nn.Module,
        schedule: FlowSchedule,
        optimizer: partial,
        warmup_steps: int = 0,
        modality_weighting: str = "joint",
    ):
        super().__init__(net, schedule, optimizer)
        self.warmup_steps = int(warmup_steps)
        self.modality_weighting = check_weighting(modality_weighting)
        self._rates_checked = False

    def check_rates(self, seconds_per_frame: dict[str, float]) -> None:
        """The network's temporal positions assume frame rates: they must be the store's (metadata)."""
        expected = getattr(self.net, "seconds_per_frame", None)
        if self._rates_checked or expected is None:
            return
        for m in self.modalities:
            if abs(expected[m] - seconds_per_frame[m]) > 1e-6 * max(1.0, seconds_per_frame[m]):
                raise ValueError(
                    f"model.{m}_frame_seconds={expected[m]} but the store's {m} frames last "
                    f"{seconds_per_frame[m]} s (its metadata): set model.{m}_frame_seconds="
                    f"{seconds_per_frame[m]}"
                )
        self._rates_checked = True

    def tokens_per_sample(self, batch: dict[str, Any]) -> int | None:
        if not isinstance(self.net, DualStreamDiT):
            return None
        return self.net.token_count({m: tuple(x.shape[1:]) for m, x in clips(batch, self.modalities).items()})

    # --------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        self.check_rates(batch["seconds_per_frame"])
        x0 = clips(batch, self.modalities)
        t, noise = self.training_draws(batch, x0)
        loss = self.denoising_loss(x0, t, noise).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=t.shape[0])
        return loss

    def denoising_loss(self, x0: dict[str, Tensor], t: Tensor, noise: dict[str, Tensor]) -> Tensor:
        return flow_matching_loss(self.net, self.schedule, x0, t, noise, self.modality_weighting)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters())
        warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(linear_warmup, steps=self.warmup_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}
