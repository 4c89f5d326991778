"""`avgen prepare [dataset=...] [preset=...] raw=... out=... [shard=i/n | merge=[...]]`: build a clip store."""

from __future__ import annotations

import sys

from hydra.utils import instantiate
from omegaconf import OmegaConf

from avgen.config import load_config
from avgen.data.prepare.pipeline import prepare


def run(overrides: list[str]) -> int:
    cfg = load_config("prepare", overrides)
    missing = [k for k in ("raw", "out") if OmegaConf.is_missing(cfg, k)]
    if missing:
        print(
            f"avgen prepare: {' and '.join(missing)} must be given, e.g. "
            "`make prepare DATASET=folder RAW=<dir> OUT=<dir>`",
            file=sys.stderr,
        )
        return 2
    adapter = instantiate(cfg.dataset)
    reps = {name: instantiate(node) for name, node in cfg.preset.representations.items()}
    windowing = instantiate(cfg.preset.windowing)
    report = prepare(
        adapter,
        cfg.raw,
        cfg.out,
        reps,
        windowing,
        workers=cfg.workers,
        progress=cfg.progress,
        shard=cfg.shard,
        merge=list(cfg.merge),
    )
    if cfg.shard is not None:
        print(
            f"shard {cfg.shard} -> {cfg.out}: {report['sources_prepared_now']} of {report['sources']} sources "
            f"prepared now, {report['num_skipped']} skipped; merge the shards with `merge=[...]`"
        )
    else:
        print(
            f"store {cfg.out}: {report['clips_written']} clips from {report['sources']} sources "
            f"({report['sources_done_before']} done before), {report['num_skipped']} skipped, "
            f"{report['num_missing']} missing"
        )
    for item in report["skipped"][:20]:
        print(f"  skipped {item['path']}: {item['reason']}")
    if report["num_skipped"] > 20:
        print(f"  ... {report['num_skipped'] - 20} more in the report")
    if report["num_missing"]:
        print(
            f"  {report['num_missing']} files named by the dataset's index are not on disk "
            f"(first: {report['missing'][0]}); all are listed in the report"
        )
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in report["seconds"].items() if k != "decode_cpu_seconds")
    print(f"  time: {seconds}")
    return 0
