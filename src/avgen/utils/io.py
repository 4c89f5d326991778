"""Atomic file writes: a reader never sees a half-written file, a killed job leaves no partial output."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def cache_root() -> Path:
    """avgen's cache (`$AVGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/avgen` or `~/.cache/avgen`): the numba cache,
    weights, the phase timings."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("AVGEN_CACHE_DIR") or xdg / "avgen")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    # np.savez appends ".npz" unless the name already ends with it, hence the suffix.
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_writable(directory: str | os.PathLike, name: str = "OUT") -> None:
    """Fail before any work when `directory` cannot be created or written, naming it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / ".write_test") as tmp:
            tmp.write_text("ok")
        (directory / ".write_test").unlink()
    except OSError as e:
        raise PermissionError(f"{name}={directory} is not writable: {e.strerror or e}") from None


SECRET = re.compile(r"(api_?key|token|secret|password)", re.IGNORECASE)


def redact(node: Any) -> Any:
    """A plain config (dicts, lists) with the values of secret-looking keys replaced, so that nothing secret
    reaches logs, checkpoints or saved configs."""
    if isinstance(node, dict):
        return {k: "<redacted>" if SECRET.search(str(k)) and v is not None else redact(v) for k, v in node.items()}
    if isinstance(node, list):
        return [redact(v) for v in node]
    return node
