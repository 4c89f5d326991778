"""`avgen guidance-sweep experiment=<name> [lambdas=[0,1,2,5,10]] [num=64] [key=value ...]`
(`make guidance-sweep EXP=<name>`): the reconstruction-guidance lambda of a trained run chosen on the
validation split -> outputs/<name>/guidance_sweep/summary.md (evaluation/sweep.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from avgen.cli.args import pop, split_experiment
from avgen.evaluation.sweep import guidance_sweep
from avgen.experiment import cpu_processes, launch_ranks, load_trained
from avgen.utils.threads import free_cores, set_torch_threads


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    ckpt, overrides = pop(overrides, "ckpt")
    lambdas, overrides = pop(overrides, "lambdas")
    num, overrides = pop(overrides, "num")
    num = int(num or 64)
    values = [float(x) for x in json.loads(lambdas)] if lambdas else [0.0, 1.0, 2.0, 5.0, 10.0]
    if not any(o.startswith("data.val_split=") for o in overrides):
        overrides = [*overrides, "data.val_split=val"]
    overrides = [*overrides, f"evaluate.num_video_to_audio={num}", f"evaluate.num_audio_to_video={num}"]
    cfg, dm, module, _, _ = load_trained(experiment, overrides, ckpt)
    if not module.conditional:
        raise ValueError(f"{experiment} generates jointly only ({type(module).__name__}): nothing to sweep")
    device, rank = launch_ranks(cfg)  # every device the run trained on generates its share
    set_torch_threads(cfg.threads or max(1, free_cores() // cpu_processes(cfg.trainer)))
    module.to(device)
    if rank != 0:  # rank 0 writes the sweep
        with tempfile.TemporaryDirectory(prefix="avgen-rank") as scratch:
            guidance_sweep(cfg, module, dm, Path(scratch), values)
        return 0
    out = Path(cfg.output_dir) / "guidance_sweep"
    summary = guidance_sweep(cfg, module, dm, out, values)
    print((out / "summary.md").read_text())
    print(f"chosen lambda {summary['chosen_lambda']} -> {out / 'summary.md'}")
    return 0
