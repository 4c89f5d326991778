"""The clip store: prepared representations every method reads.

Layout of a store directory::

    metadata.json          written last: its presence means the store is complete
    manifest.jsonl         one row per clip: index, id, source, start, split, label, label_name, caption
    <representation>.npy   (N, ...) arrays, one per representation, memory-mapped when read
    report.json            what the preparation wrote, skipped (with reasons) and how long it took
    parts/                 per-source results; re-runs skip sources whose part exists

Each stored clip covers `clip_seconds` plus `margin_seconds` of context on both sides (CMMD's time-shift
negatives take their shifted windows from this margin). `metadata.json` records, per representation,
the seconds per frame of its time axis and the clip/margin frame counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

METADATA = "metadata.json"
MANIFEST = "manifest.jsonl"
REPORT = "report.json"
STORE_FORMAT = 1


class StoreError(FileNotFoundError):
    """A missing or incomplete store; the message names the path and the command that makes it."""


@dataclass(frozen=True)
class RepInfo:
    name: str
    meta: dict[str, Any]

    @property
    def modality(self) -> str:
        return self.meta["modality"]

    @property
    def time_axis(self) -> int:
        return self.meta["time_axis"]

    @property
    def seconds_per_frame(self) -> float:
        return self.meta["seconds_per_frame"]

    @property
    def clip_frames(self) -> int:
        return self.meta["clip_frames"]

    @property
    def margin_frames(self) -> int:
        return self.meta["margin_frames"]


class Store:
    """Read access to a prepared store."""

    def __init__(self, path: str | os.PathLike, make_hint: str | None = None):
        self.path = Path(path)
        meta_path = self.path / METADATA
        if not meta_path.is_file():
            hint = make_hint or "make prepare DATASET=<name> RAW=<raw dir> OUT=" + str(self.path)
            state = "is incomplete (no metadata.json)" if self.path.exists() else "does not exist"
            raise StoreError(f"store {self.path} {state}; make it with `{hint}`")
        self.metadata: dict[str, Any] = json.loads(meta_path.read_text())
        if self.metadata.get("format") != STORE_FORMAT:
            raise StoreError(f"{meta_path}: store format {self.metadata.get('format')!r}, expected {STORE_FORMAT}")

    @cached_property
    def manifest(self) -> list[dict[str, Any]]:
        with open(self.path / MANIFEST) as f:
            return [json.loads(line) for line in f if line.strip()]

    @property
    def representations(self) -> dict[str, RepInfo]:
        return {name: RepInfo(name, meta) for name, meta in self.metadata["representations"].items()}

    def rep(self, name: str) -> RepInfo:
        reps = self.representations
        if name not in reps:
            raise KeyError(f"store {self.path} has no representation {name!r}; it has {sorted(reps)}")
        return reps[name]

    def array(self, name: str) -> np.ndarray:
        """The (N, ...) array of a representation, memory-mapped read-only."""
        self.rep(name)
        return np.load(self.path / f"{name}.npy", mmap_mode="r")

    def indices(self, split: str) -> np.ndarray:
        """Clip indices of a split, in manifest order."""
        idx = np.array([row["index"] for row in self.manifest if row["split"] == split], dtype=np.int64)
        if idx.size == 0:
            splits = sorted({row["split"] for row in self.manifest})
            raise ValueError(f"store {self.path} has no clips in split {split!r}; splits: {splits}")
        return idx

    @property
    def label_names(self) -> list[str]:
        return self.metadata.get("label_names", [])

    def __len__(self) -> int:
        return int(self.metadata["num_clips"])


def write_store(
    out: str | os.PathLike,
    rows: list[dict[str, Any]],
    arrays: dict[str, tuple[Any, tuple[int, ...]]],
    blocks: Any,
    metadata: dict[str, Any],
) -> Store:
    """The one writer of stores (prepared data and MMDisCo's fake-pair cache alike).

    rows: the manifest, one dict per clip, in array order; arrays: {representation: (dtype, per-clip shape)};
    blocks(name): the representation's arrays in row order (any block sizes); metadata: what the store
    describes (dataset, representations, seconds, ...); format, version, clip count and split sizes are added.
    Each array is written to a temporary file and renamed, the manifest next, metadata.json last: a store
    without it is incomplete, and a re-run rewrites it whole.
    """
    import avgen
    from avgen.utils.io import atomic_path, write_json, write_text

    out = Path(out)
    meta_path = out / METADATA
    if meta_path.exists():
        meta_path.unlink()  # the store is being rewritten: mark it incomplete until the end
    for name, (dtype, shape) in arrays.items():
        with atomic_path(out / f"{name}.npy", suffix=".npy") as tmp:
            data = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(len(rows), *shape))
            i = 0
            for block in blocks(name):
                data[i : i + len(block)] = block
                i += len(block)
            if i != len(rows):
                raise ValueError(f"{out}: {name} has {i} clips for {len(rows)} manifest rows")
            data.flush()
            del data
    write_text(out / MANIFEST, "".join(json.dumps(r) + "\n" for r in rows))
    write_json(
        meta_path,
        {
            "format": STORE_FORMAT,
            "avgen_version": avgen.__version__,
            "num_clips": len(rows),
            "splits": {s: sum(r["split"] == s for r in rows) for s in sorted({r["split"] for r in rows})},
            **metadata,
        },
    )
    return Store(out)
