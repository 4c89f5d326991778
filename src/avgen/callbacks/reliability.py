"""What makes a long run survive: exact resume, atomic checkpoints, non-finite steps skipped.

- `StepSeeding`: every training step reseeds torch, numpy and random from (seed, global step, rank), so the
  randomness of step k is the same whether the run was interrupted or not, on every rank, with no RNG state
  to save (the data order is resumed by `avgen.data.sampler`).
- `NonFiniteGuard`: a step whose gradients are not finite (after DDP's all-reduce, so every rank decides
  alike) is skipped: its gradients are dropped, the optimizer leaves the weights and its state untouched.
  Skips are counted and logged; `max_consecutive` in a row stop the run with `TrainingDiverged`, leaving the
  last checkpoint (written before the trouble) as it was.
- `AtomicCheckpointIO`: checkpoints are written to a temporary file and renamed, so `last.ckpt` is always a
  complete checkpoint, whenever the job is killed.
- `ResolvedConfigInCheckpoint`: checkpoints carry the resolved config (reload without the command line).
- `ReplicaConsistencyCheck`: under DDP, the replicas' weights are compared at the end of training.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from avgen.utils.io import atomic_path, redact, write_json


class TrainingDiverged(RuntimeError):
    """Raised after too many non-finite steps in a row."""


class StepSeeding(L.Callback):
    def __init__(self, seed: int = 0):
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # 64-bit mixing keeps neighbouring steps unrelated; the step's key is the same on every rank: each
        # sample's training noise is keyed by it and its store row (methods/base.py: training_draws), so the
        # noise does not depend on the rank or the batch split; the global streams differ per rank
        step_key = (self.seed * 0x9E3779B97F4A7C15 + trainer.global_step * 0xBF58476D1CE4E5B9) % 2**63
        pl_module.noise_seed = step_key
        value = (step_key + trainer.global_rank) % 2**63
        torch.manual_seed(value)
        np.random.seed(value % 2**32)
        random.seed(value)


class NonFiniteGuard(L.Callback):
    def __init__(self, max_consecutive: int = 5):
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.skipped, self.consecutive = 0, 0

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        # one norm over every gradient (multi-tensor kernels) and one device sync per step, not one per tensor:
        # a NaN or inf anywhere makes it non-finite (a finite norm above float32's max would too: no real step)
        finite = not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
        if finite:
            self.consecutive = 0
        else:
            for group in optimizer.param_groups:  # parameters without a gradient are left alone by the optimizer
                for p in group["params"]:
                    p.grad = None
            self.skipped += 1
            self.consecutive += 1
        pl_module.log(
            "train/nonfinite_steps",
            float(self.skipped),
            on_step=True,
            on_epoch=False,
            sync_dist=False,
            rank_zero_only=True,
        )
        if self.consecutive >= self.max_consecutive:
            last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
            raise TrainingDiverged(
                f"{self.consecutive} non-finite steps in a row at step {trainer.global_step} ({self.skipped} in all): "
                f"stopping. The last good checkpoint is {last}; lower the learning rate or check the data, then "
                "resume with RESUME=1"
            )

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.skipped = state_dict.get("skipped", 0)


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        with atomic_path(path, suffix=".ckpt") as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class CheckpointAtEnd(L.Callback):
    """Writes last.ckpt when fit ends. Lightning's ModelCheckpoint writes it at the periodic saves only (at the
    end only if it never saved), so the steps after the last save were lost to `make eval`, to runs that use the
    checkpoint (MMDisCo's bases) and to resume. Put before weight averaging in the callback list: the save then
    happens before the average is copied into the model, and the checkpoint holds both, like the periodic ones."""

    def on_train_end(self, trainer, pl_module) -> None:
        if _SAVED_AT.get(trainer) == trainer.global_step:
            # written at this step already (a stop for preemption): a save after the stop would not resume exactly
            return
        ckpt = trainer.checkpoint_callback
        if ckpt is not None and ckpt.save_last and ckpt.dirpath:
            save_last(trainer)


_SAVED_AT: WeakKeyDictionary = WeakKeyDictionary()  # trainer -> the step save_last last wrote


def save_last(trainer) -> Path:
    """Write the run's last.ckpt now, as ModelCheckpoint's own last saves do (its state names the file), so that
    ModelCheckpoint writes no second one (last-v1.ckpt) when fit ends."""
    _SAVED_AT[trainer] = trainer.global_step
    ckpt = trainer.checkpoint_callback
    if ckpt is None or not ckpt.dirpath:
        path = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        trainer.save_checkpoint(path)
        return path
    path = Path(ckpt.dirpath) / f"{ckpt.CHECKPOINT_NAME_LAST}{ckpt.FILE_EXTENSION}"
    ckpt.last_model_path = str(path)  # part of the saved state
    trainer.save_checkpoint(path)
    if hasattr(ckpt, "_last_checkpoint_saved"):  # Lightning's mark that "last" was written in this fit
        ckpt._last_checkpoint_saved = str(path)
    return path


class TrainingClock(L.Callback):
    """Wall-clock seconds spent in `fit` (validation included), carried in checkpoints: a resumed run reports
    its whole training time, not only the part after the restart."""

    def __init__(self):
        self.seconds, self._last = 0.0, None

    def on_train_start(self, trainer, pl_module) -> None:  # after a resume has restored `seconds`
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.seconds += now - self._last
        self._last = now

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.seconds = float(state_dict["seconds"])


class ResolvedConfigInCheckpoint(L.Callback):
    def __init__(self, cfg: DictConfig):
        self.config = redact(OmegaConf.to_container(cfg, resolve=True))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["avgen_config"] = self.config


class ReplicaConsistencyCheck(L.Callback):
    """At the end of training, every rank's weights must be identical (DDP keeps them in lockstep; a
    divergence means a rank-dependent bug). Rank 0 writes every rank's checksum to `<output>/replicas.json`;
    differing checksums fail the run."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size < 2:
            return
        checksum = torch.stack([p.detach().double().sum() for p in pl_module.parameters()]).sum()
        checksums = trainer.strategy.all_gather(checksum.to(pl_module.device)).flatten().tolist()
        if trainer.is_global_zero:
            write_json(
                Path(trainer.default_root_dir) / "replicas.json",
                {"world_size": trainer.world_size, "checksums": checksums, "step": trainer.global_step},
            )
        if len(set(checksums)) != 1:
            raise RuntimeError(f"the {trainer.world_size} replicas' weights differ after training: {checksums}")
