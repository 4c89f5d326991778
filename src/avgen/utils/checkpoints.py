"""Reading avgen training checkpoints (Lightning format, saved with the resolved config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def load_checkpoint(path: str | Path, missing_hint: str) -> dict[str, Any]:
    """The checkpoint dict, loaded with weights_only=True; a missing file names `missing_hint`. A distributed
    checkpoint (the folder an FSDP run writes) is consolidated in memory (`consolidate`)."""
    path = Path(path)
    if path.is_dir() and (path / ".metadata").is_file():
        return consolidate(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {missing_hint}")
    return torch.load(path, map_location="cpu", weights_only=True)


def consolidate(path: str | Path, optimizer: bool = False) -> dict[str, Any]:
    """A distributed checkpoint folder (`trainer=fsdp`: shards + `meta.pt`) as one ordinary avgen checkpoint:
    `state_dict` the EMA weights (its `ema.*` entries, callbacks/ema.py: ShardedEMA), `current_model_state`
    the training weights, and the run's metadata (step, loops, callbacks, config); the optimizer state only
    if asked (otherwise its shards are not read). Read on one process, no process group."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    path = Path(path)
    reader = dcp.FileSystemReader(str(path))
    stored = reader.read_metadata().state_dict_metadata  # flattened keys: "state_dict.<name>", "optimizer_0..."
    weights = {
        k[len("state_dict.") :]: torch.empty(m.size, dtype=m.properties.dtype)
        for k, m in stored.items()
        if k.startswith("state_dict.") and isinstance(m, TensorStorageMetadata)
    }
    dcp.load({"state_dict": weights}, storage_reader=reader, no_dist=True)
    meta = torch.load(path / "meta.pt", map_location="cpu", weights_only=True)
    ema = {k[len("ema.") :]: v for k, v in weights.items() if k.startswith("ema.")}
    current = {k: v for k, v in weights.items() if not k.startswith("ema.")}
    out = {**meta, "state_dict": {**current, **ema}, "current_model_state": current}
    if optimizer:
        out["optimizer_states"] = _optimizer_states(path)
    return out


def _optimizer_states(path: Path) -> list[dict[str, Any]]:
    """The optimizers' states of a distributed checkpoint, whole (the full checkpoint is read once)."""
    import tempfile

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory(prefix="avgen-consolidate") as tmp:
        dcp_to_torch_save(path, Path(tmp) / "full.pt")
        full = torch.load(Path(tmp) / "full.pt", map_location="cpu", weights_only=True)
    return [full[k] for k in sorted(full) if k.startswith("optimizer_")]


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
