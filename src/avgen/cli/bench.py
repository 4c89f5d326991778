"""`avgen bench`: speed figures, measured in one run, merged into one flat JSON file and printed as a table.

Figures (name: meaning, goal):
- data_clips_per_s: clips per second from the data module's train loader on the default synthetic store with
  CMMD's context margins (goal >= 1000, so that loading never bounds a GPU step).
- prepare_clips_per_s: clips per second through the preparation path (decode + resample + log-mel, pixels
  encoder) on freshly generated synthetic mp4s, every free core.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from avgen.cli.config import load_config
from avgen.utils.io import write_json
from avgen.utils.threads import free_cores, set_torch_threads


def bench_data(cfg: DictConfig) -> dict[str, float]:
    dm = instantiate(cfg.data, margin_seconds=cfg.data_margin_seconds)
    dm.setup("fit")
    loader = dm.train_dataloader()
    next(iter(loader))  # open the memory maps before timing
    clips, t = 0, time.perf_counter()
    for _ in range(cfg.data_epochs):
        for batch in loader:
            clips += batch["video"].shape[0]
    return {"data_clips_per_s": clips / (time.perf_counter() - t)}


def bench_prepare(cfg: DictConfig) -> dict[str, float]:
    from avgen.data.prepare.pipeline import prepare
    from avgen.data.synthetic import generate

    pcfg = load_config("prepare")
    reps = {name: instantiate(node) for name, node in pcfg.preset.representations.items()}
    windowing = instantiate(pcfg.preset.windowing)
    adapter = instantiate(pcfg.dataset, num_train=cfg.prepare_clips, num_test=0, generate_missing=False)
    with tempfile.TemporaryDirectory() as tmp:
        generate(adapter.config, Path(tmp) / "raw", progress=False)
        t = time.perf_counter()
        report = prepare(adapter, Path(tmp) / "raw", Path(tmp) / "store", reps, windowing, progress=False)
        seconds = time.perf_counter() - t
    return {"prepare_clips_per_s": report["clips_written"] / seconds}


BENCHES = {"data": bench_data, "prepare": bench_prepare}


def run(overrides: list[str]) -> int:
    cfg = load_config("bench", overrides)
    threads = set_torch_threads(cfg.threads or None)
    out = Path(cfg.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.update({"bench_cpu_cores": free_cores(), "bench_torch_threads": threads})
    for name, fn in BENCHES.items():
        results.update(fn(cfg))
        write_json(out, results)  # after each bench: a later failure keeps the earlier figures
    width = max(len(k) for k in results)
    print(f"{'figure':<{width}}  value")
    for key in sorted(results):
        value = results[key]
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(f"written to {out}")
    return 0
