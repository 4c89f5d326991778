"""Mixed precision that lets fused optimizers clip their gradients in bf16, and says what to do in float16.

Fused Adam/AdamW (`fused=True`, the default in every method's optimizer config) does the whole update in one
kernel per parameter group: measured 3.5x faster than the default multi-tensor update on the CPU
(docs/performance.md), and on a GPU the multi-tensor update makes several passes over every parameter and
its two moments per step. Lightning's `MixedPrecision` refuses gradient clipping with any optimizer that
"performs unscaling of gradients internally", which fused ones do for float16 loss scaling. bf16-mixed has no
loss scaler, so the gradients clipping sees are the true ones: `ClippingMixedPrecision` clips them as full
precision does; with float16's scaler it refuses as Lightning does, naming the settings that fix it.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType


class ClippingMixedPrecision(MixedPrecision):
    def clip_gradients(
        self,
        optimizer: Any,
        clip_val: float = 0.0,
        gradient_clip_algorithm: GradClipAlgorithmType = GradClipAlgorithmType.NORM,
    ) -> None:
        if self.scaler is None:  # bf16: no loss scaling, so the gradients are the true ones whatever the optimizer
            return Precision.clip_gradients(self, optimizer, clip_val, gradient_clip_algorithm)
        if clip_val > 0 and getattr(optimizer, "_step_supports_amp_scaling", False):
            raise ValueError(
                f"trainer.precision=16-mixed scales the loss and {type(optimizer).__name__}(fused=True) "
                "unscales inside its step, after gradient clipping would have run: set "
                "method.optimizer.fused=false, trainer.precision=bf16-mixed or trainer.gradient_clip_val=0"
            )
        return super().clip_gradients(optimizer, clip_val, gradient_clip_algorithm)


def autocast_device(accelerator: str | None) -> str:
    """The device type autocast runs on for a Trainer's `accelerator` setting (as Lightning chooses it)."""
    if accelerator in ("cpu", "mps"):
        return accelerator
    if accelerator in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda"
