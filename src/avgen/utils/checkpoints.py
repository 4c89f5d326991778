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
    return {k[len("net."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
