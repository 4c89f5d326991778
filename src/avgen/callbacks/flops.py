"""Training compute: FLOPs per step counted on a sample of steps, so runs compare at equal compute.

Every `every_n_steps`-th training step (forward, backward; `utils/flops.py` says what is counted) runs under
a FLOP counter; each counted step stands for the `every_n_steps` steps from it, so the total follows a
method whose step cost changes during training (CMMD's contrastive term switched on mid-run). Counts are
per process times the world size (DDP: every rank does the same work). The totals are checkpointed, so a
resumed run reports the compute of the whole run. With `compile=true` the counter would see the compiled
graph's kernels, not the model's operations: counting is off and the figures are absent.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from avgen.utils.flops import counter


class TrainingFlops(L.Callback):
    def __init__(self, every_n_steps: int = 50, enabled: bool = True):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every, self.enabled = every_n_steps, enabled
        self.total, self.counted_steps = 0.0, 0
        self._mode = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self.enabled and trainer.global_step % self.every == 0 and self._mode is None:
            self._mode = counter()
            self._mode.__enter__()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._mode is None:
            return
        self._mode.__exit__(None, None, None)
        flops = float(self._mode.get_total_flops()) * trainer.world_size
        self._mode = None
        self.total += flops * self.every
        self.counted_steps += 1

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None

    def summary(self, steps: int) -> dict[str, float]:
        """{gflops_per_step, train_tflops} for metrics.json (empty when nothing was counted)."""
        if not self.counted_steps:
            return {}
        # the sampled total covers steps up to the next multiple of every_n_steps: scale it to `steps`
        covered = self.counted_steps * self.every
        total = self.total * min(1.0, steps / covered)
        return {"gflops_per_step": total / max(steps, 1) / 1e9, "train_tflops": total / 1e12}

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counted_steps": self.counted_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.total = state_dict["total"]
        self.counted_steps = state_dict["counted_steps"]
