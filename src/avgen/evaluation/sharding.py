"""Evaluation on every rank (docs/performance.md#evaluation-on-every-rank).

Sample i is drawn from seed + i whoever draws it, so generation splits across the ranks a run has: the
batches of the global batch grid (0, b, 2b, ...) are dealt round-robin, each rank generates its own, and
the arrays are all-gathered and put back in index order. The batches are the ones one process would draw
(same members, same order), so 1 and N ranks produce the same arrays. Outside a process group (one
process) nothing changes. Every rank then holds every sample; the run's rank 0 writes the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np
import torch.distributed as dist

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(rank, world size) of the active process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_mine(k: int) -> bool:
    """Whether global batch `k` is this rank's (round-robin)."""
    rank, size = world()
    return k % size == rank


def mine(batches: Iterable[T]) -> list[tuple[int, T]]:
    """This rank's share of a batch grid: [(global batch index, batch), ...]."""
    return [(k, b) for k, b in enumerate(batches) if is_mine(k)]


def gather(done: dict[int, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every rank's {global batch index: arrays} -> the arrays of all batches concatenated in index order."""
    _, size = world()
    parts: list[dict[int, dict[str, np.ndarray]]] = [done]
    if size > 1:
        parts = [None] * size  # type: ignore[list-item]
        dist.all_gather_object(parts, done)
    merged = {k: v for part in parts for k, v in part.items()}
    if not merged:
        return {}
    keys = next(iter(merged.values())).keys()
    return {m: np.concatenate([merged[k][m] for k in sorted(merged)]) for m in keys}


def sum_counts(counts: dict[str, float]) -> dict[str, float]:
    """A per-rank tally summed over the ranks (e.g. the network evaluations each rank's samples took)."""
    _, size = world()
    if size == 1:
        return dict(counts)
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, dict(counts))
    out: dict[str, float] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0) + v
    return out


def first_rank_value(value: T) -> T:
    """Rank 0's value on every rank (e.g. a cost measured on its first batch)."""
    _, size = world()
    if size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
