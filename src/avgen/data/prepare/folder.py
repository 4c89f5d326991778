"""`folder` adapter: any directory tree of video files with audio; the class is the parent folder's name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from avgen.data.prepare.base import VIDEO_EXTENSIONS, Adapter, Listing, Source, require_dir


def stable_fraction(text: str) -> float:
    """A number in [0, 1) fixed by `text` alone (no RNG state): deterministic splits across runs and machines."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2**64


class FolderAdapter(Adapter):
    """Every video file under RAW. `RAW/<class>/.../clip.mp4` gets class `<class>`; files directly in RAW get none.

    Splits: a top-level folder named like a split (`train`, `val`, `test`) fixes the split and the class is
    the next folder down; otherwise a file goes to `test` when the hash of its relative path falls below
    `test_fraction` (stable when files are added or removed).
    """

    name = "folder"
    split_names = ("train", "val", "test")

    def __init__(self, test_fraction: float = 0.1, extensions: tuple[str, ...] = VIDEO_EXTENSIONS):
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        self.test_fraction = test_fraction
        self.extensions = tuple(e.lower() for e in extensions)

    def list_sources(self, raw: Path) -> Listing:
        root = require_dir(raw, "a directory tree of video files (class = parent folder name)")
        skipped: list[tuple[str, str]] = []
        files: list[Path] = []

        def onerror(err: OSError) -> None:
            skipped.append((str(err.filename), f"unreadable directory: {err.strerror or err}"))

        for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name.startswith("."):
                    continue
                if path.suffix.lower() in self.extensions:
                    files.append(path)
                else:
                    skipped.append((str(path), f"not a video file (extension {path.suffix or 'none'!r})"))
        entries = []
        for path in files:
            rel = path.relative_to(root)
            parts = rel.parts[:-1]
            if parts and parts[0] in self.split_names:
                split, parts = parts[0], parts[1:]
            else:
                split = "test" if stable_fraction(rel.as_posix()) < self.test_fraction else "train"
            entries.append((path, rel, split, parts[0] if parts else None))
        label_names = sorted({label for *_, label in entries if label is not None})
        sources = [
            Source(
                path=str(path),
                source_id=rel.with_suffix("").as_posix(),
                split=split,
                label=label_names.index(label) if label is not None else -1,
                caption=label or "",
            )
            for path, rel, split, label in entries
        ]
        return Listing(sources, label_names, skipped)
