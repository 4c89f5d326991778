"""Reading avgen training checkpoints (Lightning format, saved with the resolved config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def load_checkpoint(path: str | Path, missing_hint: str) -> dict[str, Any]:
    """The checkpoint dict, loaded with weights_only=True; a missing file names `missing_hint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {missing_hint}")
    return torch.load(path, map_location="cpu", weights_only=True)


def network_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The `net.` sub-module's weights of a LightningModule state dict (EMA weights with our callbacks)."""
    return {k[len("net.") :]: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}


def load_network(net: torch.nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Load the checkpoint's `net.` weights into `net`; a checkpoint of another architecture fails with the
    mismatched keys listed (missing, unexpected, and shape mismatches)."""
    state = network_state(checkpoint)
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = [
            f"{name}: {show(keys)}"
            for name, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("shape (checkpoint vs model)", shapes),
            )
            if keys
        ]
        raise ValueError(f"{path} does not fit this model (another architecture?); " + "; ".join(parts))
    net.load_state_dict(state)
