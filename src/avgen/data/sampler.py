"""A resumable, distributed-aware training order: a run killed mid-epoch resumes with the next unseen batch.

The order of epoch e is a permutation drawn from `seed + e` alone, so it is the same in any process and after
any restart; under DDP each rank takes every `num_replicas`-th index of it (padded to equal lengths, as
`DistributedSampler` does). The loader's `state_dict` records the epoch and how many batches the trainer has
consumed (not how many the loader has prefetched); `load_state_dict` makes the next pass skip them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler


class ResumableSampler(Sampler[int]):
    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, num_replicas: int = 1, rank: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.skip = 0, 0  # skip: samples of this epoch already consumed before a restart

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of every epoch
        if epoch != self.epoch:
            self.epoch, self.skip = epoch, 0

    def __len__(self) -> int:
        return -(-self.length // self.num_replicas)

    def order(self) -> list[int]:
        """This rank's indices for the current epoch, before any skip."""
        if self.shuffle:
            order = torch.randperm(
                self.length, generator=torch.Generator().manual_seed(self.seed + self.epoch)
            ).tolist()
        else:
            order = list(range(self.length))
        order += order[: len(self) * self.num_replicas - self.length]  # pad so every rank gets len(self)
        return order[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        order = self.order()[self.skip :]
        self.skip = 0  # a skip applies to the resumed pass only
        return iter(order)


class ResumableLoader(DataLoader):
    """A DataLoader over a `ResumableSampler` with Lightning's stateful-loader interface.

    `consumed()` gives the number of batches the trainer has finished in the current epoch (the loader itself
    runs ahead by its prefetch); without it the loader counts the batches it has yielded.
    """

    def __init__(self, *args: Any, consumed: Callable[[], int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, ResumableSampler):
            raise TypeError("ResumableLoader needs sampler=ResumableSampler(...)")
        self._consumed, self._yielded = consumed, 0

    def __iter__(self):
        self._yielded = self.sampler.skip // self.batch_size
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        consumed = self._consumed() if self._consumed is not None else self._yielded
        return {"epoch": self.sampler.epoch, "batches": int(consumed), "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("batch_size") != self.batch_size:
            raise ValueError(
                f"the checkpoint's data order used batch_size {state.get('batch_size')}, this run "
                f"{self.batch_size}: resume with the same batch size"
            )
        batches = state["batches"]
        if batches > len(self) > 0:  # a shorter loader cycled (CombinedLoader max_size_cycle): same order each pass
            batches %= len(self)
        self.sampler.epoch, self.sampler.skip = state["epoch"], batches * self.batch_size
