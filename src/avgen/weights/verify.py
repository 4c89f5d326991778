"""Hash checks of pretrained weights and the local lock that remembers them (docs/weights.md#verification).

`<weights dir>/lock.json` records, per registry entry, its source and each file's SHA-256, size and mtime.
A file whose size and mtime match its record is not hashed again (weights are GBs and are resolved by every
rank of every run); any other file is hashed and must equal, in this order: the SHA-256 the registry pins,
the hash the hub's cache names its blob by (an LFS file's SHA-256, a small file's git blob id), and the
SHA-256 recorded on first use. The first hash of a file nothing pins is recorded (trust on first use).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avgen.utils.io import cache_root
from avgen.weights.registry import Weight

LOCK_VERSION = 1


class HashMismatch(ValueError):
    """A file whose SHA-256 is not the one it must have: it is never loaded."""


class WeightsIncomplete(FileNotFoundError):
    """An entry's folder lacks a file it must hold."""


def weights_dir() -> Path:
    """Where URL downloads, hand-placed weights and the lock live (`AVGEN_WEIGHTS_DIR` overrides)."""
    if os.environ.get("AVGEN_WEIGHTS_DIR"):
        return Path(os.environ["AVGEN_WEIGHTS_DIR"]).expanduser()
    return cache_root() / "weights"  # beside the numba cache: one avgen cache root


def lock_path() -> Path:
    return weights_dir() / "lock.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_id(path: Path) -> str:
    """The id git (and so the hub) names a non-LFS file by: SHA-1 of `blob <size>\\0` + content."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hub_blob_name(path: Path) -> str | None:
    """The name of the hub cache blob `path` links to (its LFS SHA-256 or git blob id), or None elsewhere."""
    target = Path(os.path.realpath(path))
    if target.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", target.name):
        return target.name
    return None


def files_of(entry: Weight, path: Path) -> dict[str, Path]:
    """{path inside the entry: file}: the file itself, or a folder's files the entry's patterns name (a hub
    snapshot folder also holds what other tools fetched at the same commit: not ours to hash)."""
    if not entry.is_snapshot:
        return {entry.file_key: path}
    files = {f.relative_to(path).as_posix(): f for f in sorted(path.rglob("*")) if f.is_file()}
    return {rel: f for rel, f in files.items() if any(fnmatch.fnmatch(rel, p) for p in entry.patterns)}


def tree_hash(hashes: dict[str, str]) -> str:
    """One SHA-256 for a folder: over its files' relative paths and SHA-256s in sorted order."""
    return hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(hashes.items())).encode()).hexdigest()


@contextmanager
def _locked() -> Iterator[None]:
    from filelock import FileLock  # a huggingface_hub dependency

    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


def read_lock() -> dict:
    path = lock_path()
    if not path.is_file():
        return {"version": LOCK_VERSION, "weights": {}}
    lock = json.loads(path.read_text())
    if lock.get("version") != LOCK_VERSION:
        raise ValueError(f"{path}: lock version {lock.get('version')}, this avgen reads {LOCK_VERSION}")
    return lock


def record_of(entry: Weight) -> dict | None:
    """The lock's record of `entry`, if it was made from the entry's current source."""
    record = read_lock()["weights"].get(entry.name)
    return record if record and record["source"] == entry.source else None


def _check(entry: Weight, f: Path, actual: str, pin: str | None, recorded: str | None) -> None:
    """`actual` (the SHA-256 of `f`) against everything that says what it must be; refuse on the first miss."""
    refetch = f"delete it and fetch again: make weights WHICH={entry.name}"
    expected = [(pin, "pinned in avgen/weights/registry.py")]
    blob = hub_blob_name(f)
    if blob is not None and len(blob) == 64:
        expected.append((blob, "the hub's LFS SHA-256, its cache blob name"))
    expected.append(
        (
            recorded,
            f"recorded on first use in {lock_path()}; if the source really changed, "
            f"remove the {entry.name!r} record there",
        )
    )
    for want, where in expected:
        if want is not None and actual != want:
            raise HashMismatch(
                f"weights {entry.name}: {f} has SHA-256 {actual}, expected {want} ({where}); refused: {refetch}"
            )
    if blob is not None and len(blob) == 40 and (blob_id := git_blob_id(f)) != blob:
        raise HashMismatch(
            f"weights {entry.name}: {f} has git blob id {blob_id}, expected {blob} "
            f"(the hub's id, its cache blob name); refused: {refetch}"
        )


def verify(entry: Weight, path: Path) -> str:
    """Check every file of `entry` at `path` (module docstring); record new hashes. Returns the tree hash."""
    files = files_of(entry, path)
    record = record_of(entry)
    known = record["files"] if record else {}
    missing = sorted((set(entry.sha256) | set(known)) - set(files))
    if missing:
        raise WeightsIncomplete(
            f"weights {entry.name}: {path} lacks {', '.join(missing)}; fetch it again: make weights WHICH={entry.name}"
        )
    hashes, fresh = {}, {}
    for rel, f in files.items():
        st, rec, pin = f.stat(), known.get(rel), entry.sha256.get(rel)
        if rec and (rec["size"], rec["mtime_ns"]) == (st.st_size, st.st_mtime_ns) and pin in (None, rec["sha256"]):
            hashes[rel] = rec["sha256"]  # unchanged since it was verified
            continue
        actual = sha256_of(f)
        _check(entry, f, actual, pin, rec["sha256"] if rec else None)
        hashes[rel] = actual
        fresh[rel] = {"sha256": actual, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tree = tree_hash(hashes)
    if fresh or record is None or record.get("path") != str(path):
        with _locked():
            lock = read_lock()
            old = lock["weights"].get(entry.name)
            files_record = {**(old["files"] if old and old["source"] == entry.source else {}), **fresh}
            lock["weights"][entry.name] = {
                "source": entry.source,
                "path": str(path),
                "tree": tree,
                "files": {k: files_record[k] for k in sorted(hashes)},
            }
            _write(lock)
    return tree


def _write(lock: dict) -> None:
    from avgen.utils.io import atomic_path

    with atomic_path(lock_path()) as tmp:
        tmp.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
