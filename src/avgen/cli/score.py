"""`avgen score <dir> [ref=<dir>] [metrics=av_align,fvd,...] [sample_rate=16000] [into=<dir>] [key=value ...]`
(`make score DIR=... [REF=...] [METRICS=...]`): score a folder of mp4 files (audio track or a .wav beside each)
with the protocol of avgen's runs -> <dir>/scores/metrics.json and per_file.json (evaluation/score_folder.py).
Config overrides set the metrics' settings as for a run (e.g. evaluate.fvd.weights=i3d_torchscript)."""

from __future__ import annotations

import json
from pathlib import Path

from avgen.cli.args import pop
from avgen.config import load_config
from avgen.evaluation.score_folder import score_folder
from avgen.utils.io import write_json


def run(overrides: list[str]) -> int:
    positional = [o for o in overrides if "=" not in o]
    overrides = [o for o in overrides if "=" in o]
    folder, overrides = pop(overrides, "dir")
    folder = folder or (positional[0] if positional else None)
    if folder is None:
        raise ValueError("give the folder to score: avgen score <dir> (make score DIR=<dir>)")
    reference, overrides = pop(overrides, "ref")
    names, overrides = pop(overrides, "metrics")
    rate, overrides = pop(overrides, "sample_rate")
    into, overrides = pop(overrides, "into")
    metrics = [m.strip() for m in (names or "av_align").strip("[]").split(",") if m.strip()]
    cfg = load_config("train", [*overrides, "name=score"])
    out, per_file = score_folder(folder, metrics, cfg, reference, int(rate or 16000))
    out_dir = Path(into) if into else Path(folder) / "scores"
    write_json(out_dir / "metrics.json", out)
    write_json(out_dir / "per_file.json", per_file)
    print(json.dumps({k: v for k, v in out.items() if isinstance(v, (int, float))}, indent=1))
    print(f"wrote {out_dir / 'metrics.json'} and per_file.json")
    return 0
