"""Training compute: FLOPs per step counted on a sample of steps, so runs compare at equal compute.

Every `every_n_steps`-th optimizer step (forward, backward of each of its micro-batches under gradient
accumulation; `utils/flops.py` says what is counted) runs under a FLOP counter; each counted step stands for
the `every_n_steps` steps from it, so the total follows a method whose step cost changes during training
(CMMD's contrastive term switched on mid-run). Counts are per process times the world size (DDP: every rank
does the same work on its own samples), so a step's FLOPs are those of every micro-batch on every rank. The
totals are checkpointed, so a
resumed run reports the compute of the whole run. With `compile=true` the counter would see the compiled
graph's kernels, not the model's operations: counting is off and the figures are absent.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from avgen.data.clips import batch_size
from avgen.utils.flops import counter


class TrainingFlops(L.Callback):
    def __init__(self, every_n_steps: int = 50, enabled: bool = True):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every, self.enabled = every_n_steps, enabled
        self.total, self.counted_steps, self.counted_samples, self.counted_flops = 0.0, 0, 0, 0.0
        self._mode, self._step, self._last_counted = None, None, None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # every micro-batch of a counted optimizer step (global_step advances after the last one)
        if self.enabled and trainer.global_step % self.every == 0 and self._mode is None:
            self._step, self._samples = trainer.global_step, batch_size(batch) * trainer.world_size
            self._mode = counter()
            self._mode.__enter__()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._mode is None:
            return
        self._mode.__exit__(None, None, None)
        flops = float(self._mode.get_total_flops()) * trainer.world_size
        self._mode = None
        self.total += flops * self.every
        self.counted_flops += flops
        self.counted_samples += self._samples
        if self._step != self._last_counted:  # the first micro-batch of this optimizer step
            self.counted_steps, self._last_counted = self.counted_steps + 1, self._step

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None

    def summary(self, steps: int) -> dict[str, float]:
        """{gflops_per_step (an optimizer step: every micro-batch, every rank), gflops_per_sample,
        train_tflops} for metrics.json (empty when nothing was counted)."""
        if not self.counted_steps:
            return {}
        # the sampled total covers steps up to the next multiple of every_n_steps: scale it to `steps`
        covered = self.counted_steps * self.every
        total = self.total * min(1.0, steps / covered)
        out = {"gflops_per_step": total / max(steps, 1) / 1e9, "train_tflops": total / 1e12}
        if self.counted_samples:
            out["gflops_per_sample"] = self.counted_flops / self.counted_samples / 1e9
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "counted_steps": self.counted_steps,
            "counted_samples": self.counted_samples,
            "counted_flops": self.counted_flops,
            "last_counted": self._last_counted,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.total = state_dict["total"]
        self.counted_steps = state_dict["counted_steps"]
        # checkpoints written before samples were counted: gflops_per_sample stays absent for them
        self.counted_samples = state_dict.get("counted_samples", 0)
        self.counted_flops = state_dict.get("counted_flops", 0.0)
        self._last_counted = state_dict.get("last_counted")
