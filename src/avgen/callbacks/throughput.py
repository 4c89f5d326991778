"""Throughput and memory in the training logs: every `every_n_steps` optimizer steps (and at the last),
`perf/samples_per_s` (all ranks), `perf/tokens_per_s` for transformers (the method's `tokens_per_sample`),
`perf/steps_per_s`, `perf/peak_memory_gb` (this process's accelerator peak,
or its peak resident memory on a CPU), and with the FLOP count (`callbacks/flops.py`) `perf/tflops_per_s` and,
on a GPU whose dense bf16 peak is known (`PEAK_TFLOPS`, or `peak_tflops=`), `perf/mfu`: model FLOPs
utilisation, the counted FLOPs per second over that peak summed over the ranks."""

from __future__ import annotations

import time

import lightning as L
import torch

from avgen.callbacks.flops import TrainingFlops
from avgen.data.clips import batch_size
from avgen.methods.base import Trainable
from avgen.utils.process import peak_memory_gb

# dense bf16 tensor-core peaks from the vendors' datasheets (TFLOPS per GPU; SXM where there are two forms)
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}


def device_peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


class Throughput(L.Callback):
    def __init__(self, every_n_steps: int = 25, peak_tflops: float | None = None):
        self.every, self.peak = every_n_steps, peak_tflops
        self._since, self._samples, self._step = None, 0, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now, step = time.perf_counter(), trainer.global_step
        if self._since is None:  # the first step holds set-up costs: measure from its end
            self._since, self._step = now, step
            return
        self._samples += batch_size(batch) * trainer.world_size
        last = trainer.max_steps and step >= trainer.max_steps
        if step == self._step or not (step % self.every == 0 or last):
            return
        seconds = max(now - self._since, 1e-9)
        logs = {
            "perf/samples_per_s": self._samples / seconds,
            "perf/steps_per_s": (step - self._step) / seconds,
            "perf/peak_memory_gb": peak_memory_gb(),
        }
        tokens = pl_module.tokens_per_sample(batch) if isinstance(pl_module, Trainable) else None
        if tokens:
            logs["perf/tokens_per_s"] = tokens * logs["perf/samples_per_s"]
        flops = next((c for c in trainer.callbacks if isinstance(c, TrainingFlops)), None)
        per_sample = flops.summary(step).get("gflops_per_sample") if flops is not None else None
        if per_sample:
            tflops = per_sample * logs["perf/samples_per_s"] / 1e3
            logs["perf/tflops_per_s"] = tflops
            peak = self.peak or device_peak_tflops()
            if peak:
                logs["perf/mfu"] = tflops / (peak * trainer.world_size)
        pl_module.log_dict(logs, rank_zero_only=True)
        self._since, self._samples, self._step = now, 0, step
