"""`avgen prepare [dataset=...] [preset=...] raw=... out=...`: build a clip store."""

from __future__ import annotations

import sys

from hydra.utils import instantiate
from omegaconf import OmegaConf

from avgen.cli.config import load_config
from avgen.data.prepare.pipeline import prepare


def run(overrides: list[str]) -> int:
    cfg = load_config("prepare", overrides)
    missing = [k for k in ("raw", "out") if OmegaConf.is_missing(cfg, k)]
    if missing:
        print(f"avgen prepare: {' and '.join(missing)} must be given, e.g. "
              "`make prepare DATASET=folder RAW=<dir> OUT=<dir>`", file=sys.stderr)
        return 2
    adapter = instantiate(cfg.dataset)
    reps = {name: instantiate(node) for name, node in cfg.preset.representations.items()}
    windowing = instantiate(cfg.preset.windowing)
    report = prepare(adapter, cfg.raw, cfg.out, reps, windowing, workers=cfg.workers, progress=cfg.progress)
    print(f"store {cfg.out}: {report['clips_written']} clips from {report['sources']} sources "
          f"({report['sources_done_before']} done before), {report['num_skipped']} skipped")
    for item in report["skipped"][:20]:
        print(f"  skipped {item['path']}: {item['reason']}")
    if report["num_skipped"] > 20:
        print(f"  ... {report['num_skipped'] - 20} more in {cfg.out}/report.json")
    return 0
