"""What a dataset adapter gives the preparation pipeline: sources to cut into clips, and problems found."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


@dataclass(frozen=True)
class Source:
    """One media file (or a time range of one) and what is known about it."""

    path: str  # absolute path of the media file
    source_id: str  # stable, unique id; clip ids are `<source_id>` or `<source_id>_<k>`
    split: str  # "train", "val", "test"
    label: int = -1  # class index into the store's label_names, -1 if none
    caption: str = ""
    start: float | None = None  # optional time range within the file (seconds); None = whole file
    end: float | None = None

    @property
    def key(self) -> str:
        """File-system-safe name for this source's part file."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.source_id)


@dataclass
class Listing:
    """An adapter's answer: the sources, the class names, the inputs it skipped (path, reason) and the files
    its index names that are not on disk (common for datasets scraped from the web)."""

    sources: list[Source]
    label_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class Adapter:
    """A dataset layout. Subclasses implement `list_sources`; `name` goes into the store metadata."""

    name = "adapter"

    def list_sources(self, raw: Path) -> Listing:
        raise NotImplementedError


def require_dir(raw: str | os.PathLike, expected: str) -> Path:
    """Fail at once when the raw root is wrong, naming what was expected there."""
    path = Path(raw)
    if not path.is_dir():
        raise FileNotFoundError(f"RAW={path} is not a directory; expected {expected}")
    return path
