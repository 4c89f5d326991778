"""`avgen pipeline experiment=<name>` (`make pipeline EXP=<name>`): the runs an experiment starts from
(its method's `start_checkpoints`: frozen bases, a fine-tune's parent), each trained if it has no checkpoint
yet, then the experiment itself. `base_args=...` (quoted, space-separated) go to the upstream runs only."""

from __future__ import annotations

import shlex
from pathlib import Path

from avgen.cli.args import pop, split_experiment
from avgen.config import load_config
from avgen.suite import train, upstream


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    base_args, overrides = pop(overrides, "base_args")
    if experiment is None:
        raise ValueError("avgen pipeline needs experiment=<name> (make pipeline EXP=<name>)")
    paths = [o for o in overrides if o.startswith("paths.")]
    chain = upstream(experiment)
    print(f"pipeline {experiment}: {' -> '.join([*chain, experiment])}")
    for parent in chain:
        cfg = load_config("train", paths, experiment=parent)
        if (Path(cfg.output_dir) / "checkpoints" / "last.ckpt").is_file():
            print(f"pipeline: {parent} is trained ({cfg.output_dir}); kept")
            continue
        rc = train(["train", f"experiment={parent}", *paths, *shlex.split(base_args or "")])
        if rc != 0:
            return rc
    return train(["train", f"experiment={experiment}", *overrides])
