"""`vggsound` adapter: VGGSound (docs/datasets.md): `RAW/vggsound.csv` and `RAW/video/<youtube_id>_<start:06d>.mp4`.

The CSV has no header; its rows are `youtube_id, start_seconds, label, split` (train/test; labels with
commas are quoted). Most local copies lack many clips: files the CSV names but the disk lacks are counted
and listed in the report (`missing`), never errors. `keep` is an optional text file of clip ids
(`<youtube_id>_<start:06d>`, one per line) restricting the set, e.g. a filtered subset. The label is also
the caption (text-conditioned bases).
"""

from __future__ import annotations

import csv
from pathlib import Path

from avgen.data.prepare.base import Adapter, Listing, Source, require_dir


def clip_id(youtube_id: str, start_seconds: int) -> str:
    return f"{youtube_id}_{start_seconds:06d}"


def read_keep(path: str | Path) -> set[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keep={path}: no such file; expected clip ids <youtube_id>_<start:06d>, one per line")
    return {Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()}


class VGGSoundAdapter(Adapter):
    name = "vggsound"

    def __init__(self, keep: str | None = None, video_dir: str = "video", extension: str = ".mp4"):
        self.keep = read_keep(keep) if keep else None
        self.video_dir, self.extension = video_dir, extension

    def list_sources(self, raw: Path) -> Listing:
        root = require_dir(raw, "VGGSound: vggsound.csv and video/<id>_<start:06d>.mp4")
        index = root / "vggsound.csv"
        if not index.is_file() or not (root / self.video_dir).is_dir():
            absent = [
                n
                for n, ok in (
                    ("vggsound.csv", index.is_file()),
                    (f"{self.video_dir}/", (root / self.video_dir).is_dir()),
                )
                if not ok
            ]
            raise FileNotFoundError(
                f"RAW={root}: VGGSound layout is missing {', '.join(absent)} "
                f"(expected vggsound.csv and {self.video_dir}/<youtube_id>_<start:06d>.mp4)"
            )
        rows = []
        with open(index, newline="", encoding="utf-8") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                if not row:
                    continue
                if len(row) != 4 or row[3].strip() not in ("train", "test") or not row[1].strip().isdigit():
                    raise ValueError(
                        f"{index} line {number}: expected `youtube_id, start_seconds, label, train|test` "
                        f"without a header, got {row}"
                    )
                rows.append((row[0].strip(), int(row[1]), row[2].strip(), row[3].strip()))
        label_names = sorted({label for _, _, label, _ in rows})
        label_index = {name: i for i, name in enumerate(label_names)}
        sources, missing = [], []
        for youtube_id, start, label, split in rows:
            cid = clip_id(youtube_id, start)
            if self.keep is not None and cid not in self.keep:
                continue
            path = root / self.video_dir / f"{cid}{self.extension}"
            if not path.is_file():
                missing.append(str(path))
                continue
            sources.append(Source(path=str(path), source_id=cid, split=split, label=label_index[label], caption=label))
        return Listing(sources, label_names, [], missing)
