"""What this process (and the machine's others) used: /proc readings and peak memory, one owner for the
thread governor (utils/threads.py), the phase timings (utils/timings.py), evaluation and the training logs."""

from __future__ import annotations

import os
import resource
import sys


def clock_ticks() -> int:
    """Clock ticks per second of /proc's CPU times."""
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_fields(pid: int | str = "self") -> list[str]:
    """/proc/<pid>/stat after "pid (comm) " (the name may hold spaces): fields[0] is field 3, the state."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2 :].split()


def process_seconds() -> float | None:
    """Seconds since this process started, its imports included (Linux /proc; None elsewhere)."""
    try:
        start_ticks = int(stat_fields()[19])  # field 22: start time, in ticks after boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / clock_ticks()
    except (OSError, ValueError, IndexError):
        return None


def peak_memory_gb() -> float:
    """Peak accelerator memory since the last reset (CUDA), else the process's peak resident memory."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**30 if sys.platform == "darwin" else rss / 2**20
