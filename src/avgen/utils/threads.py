"""CPU thread discipline: every process caps its torch, OpenMP and BLAS (and numba) threads to its share of
the cores. Oversubscribed threads were measured 15x slower than one on a busy 2-core box, and several
processes each letting NumPy/OpenBLAS/numba use every core (evaluations side by side, pool workers, DataLoader
workers) fight over them.

Why oversubscription costs so much more than a fair share: torch splits each operator's work evenly over its
OpenMP threads and waits for the last one. When another process holds one of the cores, the thread placed
there runs only when the scheduler gives it a slice, so nearly every operator of a step waits a slice for
it, and a step of thousands of small operators slows 10-50x instead of 2x. The remedy is to run no more
threads than there are cores other processes leave idle, measured at the start (`idle_cores`) and again
while training runs (`ThreadGovernor`, `callbacks/threads.py`); docs/performance.md has the measurement.
"""

from __future__ import annotations

import math
import os
import time

from avgen.utils.process import clock_ticks, stat_fields

# Read by OpenMP, OpenBLAS, MKL, BLIS and numba when they load: set for child processes and late imports.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def free_cores() -> int:
    """Cores this process may really use (affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # non-Linux
        return max(1, os.cpu_count() or 1)


def set_torch_threads(n: int | None = None) -> int:
    """Cap this process to `n` threads (default: the free cores): torch's intra-op pool, the OpenMP and BLAS
    pools already loaded (threadpoolctl), and, through the environment, libraries loaded later and child
    processes. Returns the number set."""
    import torch
    from threadpoolctl import threadpool_limits

    n = free_cores() if n is None or n <= 0 else n
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    threadpool_limits(n)
    return n


def one_thread_worker(_worker_id: int | None = None) -> None:
    """`worker_init_fn` / pool initializer: worker processes already fill the cores, one thread each."""
    set_torch_threads(1)


# ---------------------------------------------------------------------------------- what others keep busy

BUSY_FRACTION = 0.3  # a core another process keeps at least this busy is not ours to use


def _busy_ticks(cpus: set[int]) -> int | None:
    """Non-idle clock ticks of these CPUs since boot (/proc/stat), None where /proc is not there."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total


def _process_ticks(pid: int) -> tuple[int, int]:
    """(parent pid, user + system ticks) of a process."""
    fields = stat_fields(pid)
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _own_ticks() -> int:
    """CPU ticks of this process and its live descendants (DataLoader workers are ours, not competitors)."""
    me, parents, ticks = os.getpid(), {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)], ticks[int(entry)] = _process_ticks(int(entry))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    ours, frontier = {me}, [me]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, pp in parents.items() if pp == parent and pid not in ours]
        ours.update(children)
        frontier += children
    return sum(ticks.get(pid, 0) for pid in ours)


class CoreMeter:
    """Cores that other processes kept busy between two readings (Linux /proc; elsewhere: none)."""

    def __init__(self) -> None:
        self.cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(free_cores()))
        self._last = self._read()

    def _read(self) -> tuple[float, int, int] | None:
        busy = _busy_ticks(self.cpus)
        return None if busy is None else (time.monotonic(), busy, _own_ticks())

    def others(self) -> float:
        """Mean number of these cores other processes used since the last call."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] - last[0] <= 0:
            return 0.0
        seconds = now[0] - last[0]
        return max(0.0, ((now[1] - last[1]) - (now[2] - last[2])) / clock_ticks() / seconds)


def usable_cores(others: float, cores: int) -> int:
    """Cores left to this process when others keep `others` cores busy (a core at BUSY_FRACTION counts)."""
    return max(1, cores - math.floor(others + 1 - BUSY_FRACTION))


def idle_cores(sample_seconds: float = 0.5) -> int:
    """The free cores no other process is using right now (sampled over `sample_seconds`)."""
    meter = CoreMeter()
    time.sleep(sample_seconds)
    return usable_cores(meter.others(), free_cores())


class ThreadGovernor:
    """Keeps this process's thread count at the cores other processes leave idle, up to `limit`: call
    `check()` now and then (every few seconds; readings are averages since the last call)."""

    def __init__(self, limit: int | None = None, threads: int | None = None) -> None:
        self.limit = limit or free_cores()
        self.meter = CoreMeter()
        self.threads = threads  # the count in use (None: the first check sets one)

    def check(self) -> tuple[int, float] | None:
        """(new thread count, cores others used) when the count changed, else None."""
        others = self.meter.others()
        target = min(self.limit, usable_cores(others, len(self.meter.cpus)))
        if target == self.threads:
            return None
        self.threads = set_torch_threads(target)
        return self.threads, others
