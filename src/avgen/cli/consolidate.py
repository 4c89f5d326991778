"""`avgen consolidate <checkpoint folder> [out=<file>] [optimizer=true]` (`make consolidate CKPT=...`): a
distributed checkpoint (the folder `last.ckpt` an FSDP run writes) as one ordinary checkpoint file, for
sampling, `init_from` and other machines (utils/checkpoints.py: consolidate). `make eval`, `make sample` and
`init_from` also read the folder directly."""

from __future__ import annotations

from pathlib import Path

import torch

from avgen.cli.args import pop, pop_flag
from avgen.utils.checkpoints import consolidate
from avgen.utils.io import atomic_path


def run(overrides: list[str]) -> int:
    positional = [o for o in overrides if "=" not in o]
    overrides = [o for o in overrides if "=" in o]
    path, overrides = pop(overrides, "ckpt")
    path = path or (positional[0] if positional else None)
    out, overrides = pop(overrides, "out")
    optimizer, overrides = pop_flag(overrides, "optimizer")
    if path is None or not (Path(path) / ".metadata").is_file():
        raise ValueError(
            f"give a distributed checkpoint folder (with .metadata): avgen consolidate <folder>, got {path}"
        )
    target = Path(out) if out else Path(str(path).rstrip("/") + ".consolidated.ckpt")
    checkpoint = consolidate(path, optimizer=optimizer)
    with atomic_path(target, suffix=".ckpt") as tmp:
        torch.save(checkpoint, tmp)
    weights = sum(v.numel() for v in checkpoint["state_dict"].values())
    print(f"{path} (step {checkpoint.get('global_step')}, {weights / 1e6:.1f}M values) -> {target}")
    return 0
