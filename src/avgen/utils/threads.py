"""CPU thread count: oversubscribed torch threads were measured 15x slower than one on a busy 2-core box."""

from __future__ import annotations

import os


def free_cores() -> int:
    """Cores this process may really use (affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # non-Linux
        return max(1, os.cpu_count() or 1)


def set_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to `n` (default: the free cores) and return the number set."""
    import torch

    n = free_cores() if n is None or n <= 0 else n
    torch.set_num_threads(n)
    return n
