"""`avgen eval experiment=<name> [ckpt=<path>] [key=value ...]` (`make eval EXP=<name> [CKPT=...]`): score a
trained run again, e.g. with more samples or other sampler or guidance settings, without retraining.

The experiment's config (with the overrides) builds the module, the checkpoint's weights (EMA) are loaded into
it, and the samples and metrics go to `outputs/<name>/eval/` (`metrics.json`); the training run's own
`metrics.json` is left as it was.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from avgen.cli.config import load_config
from avgen.cli.train import build, score, split_experiment
from avgen.utils.checkpoints import load_checkpoint
from avgen.utils.io import write_json
from avgen.utils.threads import set_torch_threads


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    ckpt = next((o.split("=", 1)[1] for o in overrides if o.startswith("ckpt=")), None)
    overrides = [o for o in overrides if not o.startswith("ckpt=")]
    cfg = load_config("train", overrides, experiment=experiment)
    threads = set_torch_threads(cfg.threads or None)
    path = Path(ckpt or Path(cfg.output_dir) / "checkpoints" / "last.ckpt")
    state = load_checkpoint(path, f"train the run first: make train EXP={experiment or cfg.name}")
    dm, module, _ = build(cfg)
    dm.setup("fit")
    missing, unexpected = module.load_state_dict(state["state_dict"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit {experiment or cfg.name}'s model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    out_dir = Path(cfg.output_dir) / "eval"
    t = time.perf_counter()
    metrics = score(cfg, module, dm, out_dir)
    metrics.update({"experiment": experiment or cfg.name, "checkpoint": str(path), "steps": state.get("global_step"),
                    "eval_seconds": time.perf_counter() - t, "torch_threads": threads})
    write_json(out_dir / "metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    return 0
