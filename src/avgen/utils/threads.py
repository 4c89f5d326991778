"""CPU thread discipline: every process caps its torch, OpenMP and BLAS (and numba) threads to its share of
the cores. Oversubscribed threads were measured 15x slower than one on a busy 2-core box, and several
processes each letting NumPy/OpenBLAS/numba use every core (evaluations side by side, pool workers, DataLoader
workers) fight over them.
"""

from __future__ import annotations

import os

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
