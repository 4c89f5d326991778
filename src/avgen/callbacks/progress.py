"""Step-based training progress: `step 800/1600 (50%) | loss 0.1234 | 3.1 steps/s | ETA 4m10s`.

Lightning's bars count epochs ("Epoch 12/-2" for a run bounded by max_steps) and redraw one line into log
files. This progress bar counts optimizer steps toward `max_steps`: a tqdm bar in a terminal, plain lines
every `every_seconds` (and at the first and the last step) when stderr is a file. The rate and the ETA come
from the last `window_seconds`, so they follow a change of pace (another job arriving on the machine)
instead of averaging it away over the whole run.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

from avgen.utils.progress import duration, interactive


class StepProgress(ProgressBar):
    def __init__(self, every_seconds: float = 30.0, force_lines: bool = False, window_seconds: float = 60.0):
        super().__init__()
        self.every_seconds, self.force_lines, self.window_seconds = every_seconds, force_lines, window_seconds
        self._recent: deque[tuple[float, int]] = deque()  # (time, step) over the last window_seconds
        self._enabled = True
        self._bar = None
        self._start = self._last = 0.0
        self._first_step = 0

    # ProgressBar's interface
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def lines(self) -> bool:
        return self.force_lines or not interactive()

    def _total(self, trainer: L.Trainer) -> int | None:
        return trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        self._start = self._last = time.perf_counter()
        self._first_step = trainer.global_step  # a resumed run starts past 0
        self._recent = deque([(self._start, trainer.global_step)])
        total = self._total(trainer)
        if self.lines:
            print(f"training: step {trainer.global_step}/{total or '?'}", file=sys.stderr, flush=True)
        else:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=trainer.global_step, desc="training", unit="step", dynamic_ncols=True)

    def _loss(self, trainer: L.Trainer) -> str:
        loss = trainer.callback_metrics.get("train/loss")
        return f"loss {float(loss):.4f}" if loss is not None else ""

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        step, total = trainer.global_step, self._total(trainer)
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if now - self._last >= 1.0:  # reading the loss waits for the accelerator: once a second, not per step
                self._last = now
                self._bar.set_postfix_str(self._loss(trainer), refresh=False)
            return
        self._recent.append((now, step))
        while len(self._recent) > 2 and now - self._recent[1][0] >= self.window_seconds:
            self._recent.popleft()  # keep one sample at least a window old
        if now - self._last < self.every_seconds and step != total:
            return
        self._last = now
        rate = self.recent_rate()
        parts = [
            f"step {step}/{total or '?'}" + (f" ({100 * step / total:.0f}%)" if total else ""),
            self._loss(trainer),
            f"{rate:.2f} steps/s",
        ]
        if total and rate > 0:
            parts.append(f"ETA {duration((total - step) / rate)}")
        print(" | ".join(p for p in parts if p), file=sys.stderr, flush=True)

    def recent_rate(self) -> float:
        """Steps per second over about the last `window_seconds` (since the start when shorter)."""
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        return (s1 - s0) / max(t1 - t0, 1e-9)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._enabled and trainer.is_global_zero:
            print(
                f"training: {trainer.global_step} steps in {duration(time.perf_counter() - self._start)}",
                file=sys.stderr,
                flush=True,
            )
