"""`avgen eval experiment=<name> [ckpt=<path>] [key=value ...]` (`make eval EXP=<name> [CKPT=...]`): score a
trained run again, e.g. with more samples or other sampler or guidance settings, without retraining.

The experiment's config (with the overrides) builds the module, the checkpoint's weights (EMA) are loaded into
it, and the samples and metrics go to `outputs/<name>/eval/` (`metrics.json`; `make compare` reads the run's
scores from there); the training run's own `metrics.json` is left as it was. `into=<folder>` writes to
`outputs/<name>/<folder>/` instead, which compare does not read: settings tried on the validation split
(`data.val_split=val`, e.g. `make guidance-sweep`) never replace a run's test scores.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from avgen.cli.args import pop, split_experiment
from avgen.evaluation.report import dataset_name, log_run_metrics
from avgen.evaluation.scoring import score
from avgen.evaluation.sharding import world
from avgen.experiment import cpu_processes, launch_ranks, load_trained, make_logger
from avgen.utils.io import redact, write_json
from avgen.utils.threads import free_cores, set_torch_threads


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    ckpt, overrides = pop(overrides, "ckpt")
    into, overrides = pop(overrides, "into")
    cfg, dm, module, state, experiment = load_trained(experiment, overrides, ckpt)
    device, rank = launch_ranks(cfg)  # every device the run trained on generates its share of the samples
    threads = set_torch_threads(cfg.threads or max(1, free_cores() // cpu_processes(cfg.trainer)))
    module.to(device)
    path = state["path"]
    out_dir = Path(cfg.output_dir) / (into or "eval")
    t = time.perf_counter()
    if rank != 0:  # its samples are gathered by every rank; rank 0 writes the run's files
        with tempfile.TemporaryDirectory(prefix="avgen-rank") as scratch:
            score(cfg, module, dm, Path(scratch))
        return 0
    metrics = score(cfg, module, dm, out_dir)
    metrics.update(
        {
            "experiment": experiment,
            "checkpoint": path,
            "steps": state.get("global_step"),
            "eval_seconds": time.perf_counter() - t,
            "torch_threads": threads,
            "eval_ranks": world()[1],
        }
    )
    write_json(out_dir / "metrics.json", metrics)
    if cfg.logger._target_.endswith("WandbLogger"):  # a run of its own beside the training run, same keys
        logger = make_logger(cfg, dataset_name(dm), name=f"{cfg.name}-eval", save_dir=str(out_dir))
        logger.log_hyperparams(redact(OmegaConf.to_container(cfg, resolve=True)))
        log_run_metrics(logger, metrics, state.get("global_step"))
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    print(f"wrote {out_dir / 'metrics.json'}")
    return 0
