"""Raw-audio segments for vocoder training (MelGAN, Kumar et al. 2019: random fixed-length segments).

The vocoder learns from the dataset's own media files (decoded by PyAV through `MediaFile`, resampled by
librosa), not from the clip store: it needs waveforms, which the store does not keep. Files that cannot be
decoded are skipped and listed (`skipped`), never fatal. Training crops are random (seeded per epoch and
index, so a resumed run replays the same crops); validation crops start at 0.
"""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avgen.data.media import MediaError, MediaFile
from avgen.data.sampler import ResumableLoader, ResumableSampler
from avgen.utils.threads import one_thread_worker


class WaveformSegments(Dataset):
    """(samples,) float32 segments of `segment_seconds` at `sample_rate`; shorter files are zero-padded."""

    def __init__(
        self,
        files: list[str],
        sample_rate: int,
        segment_seconds: float,
        random_crop: bool,
        seed: int = 0,
        cache: bool = True,
    ):
        self.sample_rate, self.random_crop, self.seed, self.cache = sample_rate, random_crop, seed, cache
        self.length = int(round(segment_seconds * sample_rate))
        self.files, self.skipped, self._waves = [], [], {}
        for f in files:
            try:
                self._waves[f] = self._decode(f)
                self.files.append(f)
            except MediaError as e:
                self.skipped.append(f"{f}: {e}")
        if not cache:
            self._waves.clear()
        self.epoch = 0

    def _decode(self, path: str) -> np.ndarray:
        media = MediaFile(path)
        return media.audio(self.sample_rate, 0.0, media.info.audio_duration)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        f = self.files[i]
        wav = self._waves[f] if self.cache else self._decode(f)
        if len(wav) < self.length:
            wav = np.pad(wav, (0, self.length - len(wav)))
        start = 0
        if self.random_crop and len(wav) > self.length:
            start = int(np.random.default_rng((self.seed, self.epoch, i)).integers(0, len(wav) - self.length + 1))
        return torch.from_numpy(np.ascontiguousarray(wav[start : start + self.length]))


def stack_audio(segments: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"audio": torch.stack(segments)}  # B x (samples,) -> (B, samples)


class WaveformDataModule(L.LightningDataModule):
    """Batches {"audio": (B, samples)} of segments from files matching `train` / `val` globs under `root`."""

    def __init__(
        self,
        root: str,
        train: str,
        val: str,
        sample_rate: int,
        dataset_name: str,
        segment_seconds: float = 4.0,
        batch_size: int = 16,
        num_workers: int = 0,
        max_files: int | None = None,
        seed: int = 0,
        cache: bool = True,
    ):
        super().__init__()
        self.root, self.patterns, self.dataset_name = Path(root), {"train": train, "val": val}, dataset_name
        self.sample_rate, self.segment_seconds, self.batch_size = sample_rate, segment_seconds, batch_size
        self.num_workers, self.max_files, self.seed, self.cache = num_workers, max_files, seed, cache
        self.datasets: dict[str, WaveformSegments] = {}

    def files(self, split: str) -> list[str]:
        files = sorted(glob.glob(str(self.root / self.patterns[split]), recursive=True))
        if not files:
            raise FileNotFoundError(
                f"data.root={self.root}: no files match data.{split}={self.patterns[split]!r} "
                "(for the synthetic set run `make data` first)"
            )
        return files[: self.max_files] if self.max_files else files

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.datasets:
                ds = WaveformSegments(
                    self.files(split),
                    self.sample_rate,
                    self.segment_seconds,
                    random_crop=split == "train",
                    seed=self.seed,
                    cache=self.cache,
                )
                if ds.skipped:
                    warnings.warn(
                        f"{len(ds.skipped)} {split} files skipped:\n  " + "\n  ".join(ds.skipped[:20]), stacklevel=2
                    )
                if not len(ds):
                    raise ValueError(f"data.root={self.root}: none of the {split} files could be decoded")
                self.datasets[split] = ds

    def _replicas(self) -> tuple[int, int]:
        return (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        ds, trainer = self.datasets["train"], self.trainer
        ds.epoch = trainer.current_epoch if trainer is not None else 0
        replicas, rank = self._replicas()
        sampler = ResumableSampler(len(ds), seed=self.seed, shuffle=True, num_replicas=replicas, rank=rank)
        consumed = (lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed) if trainer else None
        return ResumableLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=True,
            consumed=consumed,
            collate_fn=stack_audio,
            worker_init_fn=one_thread_worker,
        )

    def val_dataloader(self, sharded: bool = True) -> DataLoader:
        ds = self.datasets["val"]
        replicas, rank = self._replicas() if sharded else (1, 0)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            sampler=ResumableSampler(len(ds), shuffle=False, num_replicas=replicas, rank=rank),
            collate_fn=stack_audio,
            worker_init_fn=one_thread_worker,
        )

    def reference_loader(self) -> DataLoader:
        """The validation segments in order and whole on every rank (the vocoder's scores)."""
        return self.val_dataloader(sharded=False)
