"""Every process caps its torch, OpenMP and BLAS threads (utils/threads.py), DataLoader workers included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np  # noqa: F401 - loads the BLAS pool the caps must reach
import pytest

READ_CAPS = """
import json, torch, threadpoolctl
from avgen.utils.threads import set_torch_threads
import numpy, scipy.linalg  # BLAS pools loaded before the cap
set_torch_threads({n})
pools = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
omp = __import__("os").environ["OMP_NUM_THREADS"]
print(json.dumps({{"torch": torch.get_num_threads(), "pools": pools, "omp": omp}}))
"""


def test_a_process_caps_torch_blas_and_openmp(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", READ_CAPS.format(n=1)], env=env, capture_output=True, text=True, check=True
    ).stdout
    caps = json.loads(out.strip().splitlines()[-1])
    assert caps["torch"] == 1 and caps["omp"] == "1"
    assert caps["pools"] and all(n == 1 for n in caps["pools"]), caps


class _ReportCaps:
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> list[int]:
        import threadpoolctl
        import torch

        return [torch.get_num_threads(), *(p["num_threads"] for p in threadpoolctl.threadpool_info())]


def test_dataloader_workers_run_one_thread_each(synthetic_store):
    """The data module's loaders start their workers with one thread each."""
    from avgen.data.datamodule import AVDataModule

    dm = AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", batch_size=2, num_workers=2)
    dm.setup("fit")
    loader = dm.val_dataloader()
    assert loader.worker_init_fn is not None
    from torch.utils.data import DataLoader

    reports = list(DataLoader(_ReportCaps(), batch_size=None, num_workers=2, worker_init_fn=loader.worker_init_fn))
    assert all(all(n == 1 for n in r) for r in reports), reports


def test_usable_cores_leave_a_core_that_another_process_keeps_busy():
    from avgen.utils.threads import usable_cores

    assert usable_cores(0.0, 2) == 2 and usable_cores(0.2, 2) == 2  # background noise is not a competitor
    assert usable_cores(0.4, 2) == 1 and usable_cores(1.0, 2) == 1 and usable_cores(3.0, 2) == 1  # never 0
    assert usable_cores(1.1, 4) == 3 and usable_cores(1.5, 4) == 2


def _detached_busy_loop() -> int:
    """A busy process that is not this one's descendant (as another user's job): its pid."""
    shell = f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    return int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True, check=True).stdout)


def test_the_meter_sees_other_processes_and_not_this_ones_work():
    """Whatever else the machine runs (`background`), this process's own work does not count and one more
    busy process that is not its descendant counts as a core."""
    import signal
    import time

    from avgen.utils.threads import CoreMeter, ThreadGovernor, usable_cores

    meter = CoreMeter()
    time.sleep(0.6)
    background = meter.others()
    end = time.monotonic() + 0.6
    while time.monotonic() < end:  # this process busy
        pass
    assert abs(meter.others() - background) < 0.4
    pid = _detached_busy_loop()
    try:
        governor = ThreadGovernor(limit=len(meter.cpus))
        time.sleep(1.0)
        assert meter.others() - background > 0.6
        threads, others = governor.check()
        assert threads == usable_cores(others, len(meter.cpus)) < len(meter.cpus) and others - background > 0.6
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_shared_machine_bench_measures_every_policy_beside_a_busy_process(synthetic_store):
    from avgen.bench.shared_machine import COMPETITORS, POLICIES, bench_shared_machine
    from avgen.config import load_config

    cfg = load_config("bench", [f"data.store={synthetic_store}", "shared_seconds=1", "shared_turns=1"])
    results = bench_shared_machine(cfg)
    for policy in POLICIES:
        assert results[f"shared_{policy}_none_step_ms"] > 0
        for competitor in COMPETITORS[1:]:
            assert results[f"shared_{policy}_{competitor}_slowdown"] > 0
