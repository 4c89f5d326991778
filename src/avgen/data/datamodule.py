"""One LightningDataModule over any clip store.

Batches are dicts::

    video:   (B, F, C, H, W) float32        the clip, plus `margin` frames each side when requested
    audio:   (B, C, T) or (B, C, T, M) float32
    label:   (B,) int64 (-1 = none)
    id, caption: lists of str
    margin:  {"video": m_v, "audio": m_a}   frames of context on each side of the clip
    time_axis: {"video": 1, "audio": 2}     the time axis of each batched tensor, from the store metadata
    seconds_per_frame: {"video": ..., "audio": ...}   of each time axis, from the store metadata

A dataset fetches a whole batch at once (`__getitems__`): one sorted fancy-index read per memory-mapped
array instead of B small reads, which is what keeps loading far from bounding a training step.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avgen.data.sampler import ResumableLoader, ResumableSampler
from avgen.data.store import Store
from avgen.utils.threads import one_thread_worker


class ClipDataset(Dataset):
    """Clips of one split of a store, for a video and an audio representation."""

    def __init__(self, store: Store, split: str, video: str, audio: str, margin_seconds: float = 0.0):
        self.store = store
        self.split = split
        self.indices = store.indices(split)
        self.names = {"video": video, "audio": audio}
        self.windows: dict[str, tuple[int, int, int]] = {}  # key -> (time axis, first frame, length)
        self.margin: dict[str, int] = {}  # key -> context frames on each side
        self.seconds_per_frame: dict[str, float] = {}
        for key, name in self.names.items():
            info = store.rep(name)
            if info.modality != key:
                raise ValueError(f"representation {name!r} of {store.path} is {info.modality}, not {key}")
            margin = int(np.floor(margin_seconds / info.seconds_per_frame + 1e-6))
            if margin > info.margin_frames:
                raise ValueError(
                    f"margin_seconds={margin_seconds} needs {margin} {name} frames of context, but {store.path} "
                    f"stores {info.margin_frames} (margin_seconds={store.metadata['margin_seconds']}); "
                    "re-prepare with a larger margin or ask for less"
                )
            first = info.margin_frames - margin
            self.windows[key] = (info.time_axis, first, info.clip_frames + 2 * margin)
            self.margin[key] = margin
            self.seconds_per_frame[key] = info.seconds_per_frame
        manifest = store.manifest
        self.ids = [manifest[i]["id"] for i in self.indices]
        self.captions = [manifest[i]["caption"] for i in self.indices]
        self.labels = torch.tensor([manifest[i]["label"] for i in self.indices], dtype=torch.int64)
        self._arrays: dict[str, np.ndarray] | None = None  # opened lazily: memmaps do not cross fork/spawn well

    def __len__(self) -> int:
        return len(self.indices)

    def _array(self, key: str) -> np.ndarray:
        if self._arrays is None:
            self._arrays = {k: self.store.array(name) for k, name in self.names.items()}
        return self._arrays[key]

    def __getitems__(self, positions: list[int]) -> dict[str, Any]:
        positions = np.asarray(positions, dtype=np.int64)
        rows = self.indices[positions]
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on disk
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        batch: dict[str, Any] = {}
        for key, (axis, first, length) in self.windows.items():
            block = self._array(key)[rows[order]]
            # (B, ...) with time at `axis + 1`: keep the requested window only
            block = np.take(block, np.arange(first, first + length), axis=axis + 1)
            batch[key] = torch.from_numpy(block[inverse].astype(np.float32))
        batch["label"] = self.labels[positions]
        batch["row"] = torch.from_numpy(rows.astype(np.int64))  # store rows: what keys each sample's noise
        batch["id"] = [self.ids[p] for p in positions]
        batch["caption"] = [self.captions[p] for p in positions]
        batch["margin"] = dict(self.margin)
        batch["time_axis"] = {key: axis + 1 for key, (axis, _, _) in self.windows.items()}  # batched
        batch["seconds_per_frame"] = dict(self.seconds_per_frame)
        return batch

    def __getitem__(self, position: int) -> dict[str, Any]:
        batch = self.__getitems__([position])
        return {k: (v[0] if isinstance(v, (torch.Tensor, list)) else v) for k, v in batch.items()}


def _identity_collate(batch: dict[str, Any]) -> dict[str, Any]:
    return batch  # `__getitems__` already returns a collated batch


class AVDataModule(L.LightningDataModule):
    """Train/val/test loaders over a store, each sharding itself over DDP ranks (`avgen.data.sampler`); the
    train loader also resumes mid-epoch."""

    def __init__(
        self,
        store: str,
        video: str,
        audio: str,
        batch_size: int = 16,
        num_workers: int = 0,
        margin_seconds: float = 0.0,
        train_split: str = "train",
        val_split: str = "test",
        test_split: str = "test",
        make_hint: str | None = None,
        seed: int = 0,
        drop_last: bool = True,
        persistent_workers: bool = False,
        pin_memory: bool = False,
    ):
        super().__init__()
        self.store_path = os.fspath(store)
        self.video, self.audio = video, audio
        self.batch_size, self.num_workers = batch_size, num_workers
        self.margin_seconds = margin_seconds
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.make_hint = make_hint
        self.seed = seed
        self.drop_last = drop_last
        self.persistent_workers = persistent_workers and num_workers > 0
        self.pin_memory = pin_memory
        self._store: Store | None = None
        self._datasets: dict[str, ClipDataset] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_path, make_hint=self.make_hint)
        return self._store

    def dataset(self, stage: str) -> ClipDataset:
        if stage not in self._datasets:
            self._datasets[stage] = ClipDataset(
                self.store, self.splits[stage], self.video, self.audio, self.margin_seconds
            )
        return self._datasets[stage]

    def setup(self, stage: str | None = None) -> None:
        _ = self.store  # fail early, naming the missing store and the command that makes it

    def _replicas(self) -> tuple[int, int]:
        return (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)

    def _loader(self, stage: str, sharded: bool = True) -> DataLoader:
        """An evaluation loader: fixed order, sharded over DDP ranks (or whole on every rank)."""
        dataset = self.dataset(stage)
        replicas, rank = self._replicas() if sharded else (1, 0)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=ResumableSampler(len(dataset), shuffle=False, num_replicas=replicas, rank=rank),
            num_workers=self.num_workers,
            collate_fn=_identity_collate,
            worker_init_fn=one_thread_worker,
            persistent_workers=self.persistent_workers,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        """The resumable training order (`avgen.data.sampler`), sharded over DDP ranks by itself (the trainer
        configs set `use_distributed_sampler: false`)."""
        trainer = self.trainer
        replicas, rank = self._replicas()
        dataset = self.dataset("train")
        if len(dataset) < self.batch_size * replicas and self.drop_last:
            raise ValueError(
                f"store {self.store_path}: the train split has {len(dataset)} clips, fewer than one "
                f"batch of {self.batch_size} per process ({replicas} processes)"
            )
        sampler = ResumableSampler(len(dataset), seed=self.seed, shuffle=True, num_replicas=replicas, rank=rank)
        consumed = (lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed) if trainer else None
        return ResumableLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=_identity_collate,
            drop_last=self.drop_last,
            persistent_workers=self.persistent_workers,
            worker_init_fn=one_thread_worker,
            pin_memory=self.pin_memory,
            consumed=consumed,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def reference_loader(self) -> DataLoader:
        """The `val` split in order and whole on every rank: evaluation's reference clips and conditions, the
        same whichever rank reads them and however many ranks trained (evaluation/sharding.py)."""
        return self._loader("val", sharded=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def rep_metadata(dm) -> tuple[dict, dict]:
    """Store metadata of the video and the audio representation a data module loads."""
    names = dm.dataset("val").names
    return dm.store.rep(names["video"]).meta, dm.store.rep(names["audio"]).meta


def clip_shapes(dm, length_factor: int = 1) -> dict[str, tuple[int, ...]]:
    """Per modality, the shape of one stored clip (margins excluded), `length_factor` times as long in time."""
    shapes = {}
    for modality, meta in zip(("video", "audio"), rep_metadata(dm)):
        shape = list(meta["shape"])
        shape[meta["time_axis"]] = meta["clip_frames"] * length_factor
        shapes[modality] = tuple(shape)
    return shapes


def draw_prompts(dm, n: int, generator: torch.Generator | None = None, seeds: list[int] | None = None) -> list[str]:
    """`n` captions of the test split, drawn with `generator` (or one per seed of `seeds`, so that a sample
    index gets the same prompt in every run): the prompts of text-conditioned sampling."""
    captions = dm.dataset("val").captions
    if not any(captions):
        raise ValueError(f"the test split of {dm.store.path} has no captions to prompt text-conditioned models with")
    if seeds is not None:
        return [
            captions[int(torch.randint(len(captions), (1,), generator=torch.Generator().manual_seed(s)))] for s in seeds
        ]
    return [captions[i] for i in torch.randint(len(captions), (n,), generator=generator).tolist()]
