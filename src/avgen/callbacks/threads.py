"""Threads that follow the idle cores while training runs (utils/threads.py says why): with `threads: 0`,
every `every_seconds` the cores other processes used since the last look are measured and torch's thread
count set to what they left idle, so a job that starts beside training slows it about by its fair share,
not 10-50x, and training takes the cores back when the job ends."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from avgen.utils.threads import ThreadGovernor, free_cores


class FollowIdleCores(L.Callback):
    def __init__(self, threads: int = 0, every_seconds: float = 5.0):
        self.enabled = threads == 0  # a thread count the user set is kept
        self.every_seconds = every_seconds
        self.governor: ThreadGovernor | None = None
        self._last = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        if self.enabled and trainer.strategy.root_device.type == "cpu":
            import torch

            # up to this process's share of the cores (CPU DDP runs one process per device)
            limit = max(1, free_cores() // trainer.num_devices)
            self.governor = ThreadGovernor(limit, threads=torch.get_num_threads())
            self._last = time.monotonic()

    def on_train_batch_end(self, trainer, *args) -> None:
        if self.governor is None or time.monotonic() - self._last < self.every_seconds:
            return
        self._last = time.monotonic()
        changed = self.governor.check()
        if changed is not None:
            threads, others = changed
            rank_zero_info(f"threads: {threads} (other processes used {others:.1f} of the cores lately)")
