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
from typing import Any

from avgen.cli.config import load_config
from omegaconf import OmegaConf

from avgen.cli.train import build, dataset_name, log_run_metrics, make_logger, pop, score, split_experiment
from avgen.utils.checkpoints import load_checkpoint
from avgen.utils.io import redact, write_json
from avgen.utils.threads import set_torch_threads


def load_trained(overrides: list[str]) -> tuple[Any, Any, Any, dict, str]:
    """The experiment's config (with overrides), its data module and its module with a checkpoint's weights
    (`ckpt=`, default the run's last.ckpt); also the checkpoint and the experiment name."""
    experiment, overrides = split_experiment(overrides)
    ckpt, overrides = pop(overrides, "ckpt")
    cfg = load_config("train", overrides, experiment=experiment)
    name = experiment or cfg.name
    path = Path(ckpt or Path(cfg.output_dir) / "checkpoints" / "last.ckpt")
    state = load_checkpoint(path, f"train the run first: make train EXP={name}")
    dm, module, _ = build(cfg)
    dm.setup("fit")
    missing, unexpected = module.load_state_dict(state["state_dict"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit {name}'s model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return cfg, dm, module, {**state, "path": str(path)}, name


def run(overrides: list[str]) -> int:
    cfg, dm, module, state, experiment = load_trained(overrides)
    threads = set_torch_threads(cfg.threads or None)
    path = state["path"]
    out_dir = Path(cfg.output_dir) / "eval"
    t = time.perf_counter()
    metrics = score(cfg, module, dm, out_dir)
    metrics.update({"experiment": experiment, "checkpoint": path, "steps": state.get("global_step"),
                    "eval_seconds": time.perf_counter() - t, "torch_threads": threads})
    write_json(out_dir / "metrics.json", metrics)
    if cfg.logger._target_.endswith("WandbLogger"):  # a run of its own beside the training run, same keys
        logger = make_logger(cfg, dataset_name(dm), name=f"{cfg.name}-eval", save_dir=str(out_dir))
        logger.log_hyperparams(redact(OmegaConf.to_container(cfg, resolve=True)))
        log_run_metrics(logger, metrics, state.get("global_step"))
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    return 0
