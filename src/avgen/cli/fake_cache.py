"""`avgen fake-cache experiment=<mmdisco experiment> [key=value ...]` (`make fake-cache EXP=...`): MMDisCo's
fake pairs sampled from its bases into `data.fake_store`, as its own step (resumable: re-run after a kill
and only the missing batches are drawn). Training runs the same step when the cache is missing."""

from __future__ import annotations

import torch

from avgen.cli.args import split_experiment
from avgen.config import load_config
from avgen.experiment import build, describe_missing, missing_prerequisites
from avgen.utils.threads import set_torch_threads


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    cfg = load_config("train", overrides, experiment=experiment)
    prerequisites = missing_prerequisites(cfg, overrides)
    if prerequisites:
        raise FileNotFoundError(describe_missing(experiment or cfg.name, prerequisites))
    set_torch_threads(cfg.threads or None)
    dm, module, _ = build(cfg)
    if not hasattr(dm, "fake_store"):
        raise ValueError(f"{experiment or cfg.name} trains on no fake pairs (data: {cfg.data._target_})")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not module.fake_pairs(dm, device):
        print(f"{experiment or cfg.name}: data.fakes={dm.fakes}: no fake-pair cache to build")
        return 0
    print(f"fake pairs: {dm.fake_store}")
    return 0
