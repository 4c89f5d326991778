"""Every process caps its torch, OpenMP and BLAS threads (utils/threads.py), DataLoader workers included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np  # noqa: F401 - loads the BLAS pool the caps must reach

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
