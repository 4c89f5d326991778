"""`landscape` adapter: the Landscape dataset (docs/datasets.md): 10 s clips as `RAW/<split>/<class>/<id>.mp4`.

The nine classes keep a fixed order (so label indices agree across machines and subsets); a class folder
outside them is listed as skipped. Captions for text-conditioned bases come from an optional CSV of
`clip id, caption` rows (the id is the file name without extension; a header row is allowed); clips it
does not mention are captioned with their class name.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avgen.data.prepare.base import VIDEO_EXTENSIONS, Adapter, Listing, Source, require_dir

CLASSES = (
    "explosion",
    "fire_crackling",
    "raining",
    "splashing_water",
    "squishing_water",
    "thunder",
    "underwater_burbling",
    "waterfall_burbling",
    "wind_noise",
)
SPLITS = ("train", "val", "test")


def read_captions(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions={path}: no such file; expected a CSV of `clip id, caption` rows")
    captions = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row_number, row in enumerate(csv.reader(f), start=1):
            if not row or (row_number == 1 and row[0].strip().lower() in ("id", "clip_id", "clip id", "video_id")):
                continue
            if len(row) < 2:
                raise ValueError(f"captions={path} row {row_number}: expected `clip id, caption`, got {row}")
            captions[Path(row[0].strip()).stem] = ",".join(row[1:]).strip()
    return captions


class LandscapeAdapter(Adapter):
    name = "landscape"

    def __init__(self, captions: str | None = None):
        self.captions = read_captions(captions) if captions else {}

    def list_sources(self, raw: Path) -> Listing:
        root = require_dir(raw, "Landscape: <split>/<class>/<id>.mp4 with split in train, test")
        split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
        if not split_dirs:
            raise FileNotFoundError(
                f"RAW={root}: expected Landscape's layout <split>/<class>/<id>.mp4 (split folders train/ and "
                f"test/, class folders such as {CLASSES[0]}/); found no split folder"
            )
        sources, skipped = [], []
        for split_dir in split_dirs:
            for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                label_name = class_dir.name.lower().replace(" ", "_")
                if label_name not in CLASSES:
                    skipped.append((str(class_dir), f"not a Landscape class (expected one of {', '.join(CLASSES)})"))
                    continue
                for path in sorted(class_dir.iterdir()):
                    if path.name.startswith(".") or not path.is_file():
                        continue
                    if path.suffix.lower() not in VIDEO_EXTENSIONS:
                        skipped.append((str(path), f"not a video file (extension {path.suffix or 'none'!r})"))
                        continue
                    sources.append(
                        Source(
                            path=str(path),
                            source_id=f"{split_dir.name}/{label_name}/{path.stem}",
                            split=split_dir.name,
                            label=CLASSES.index(label_name),
                            caption=self.captions.get(path.stem, label_name.replace("_", " ")),
                        )
                    )
        return Listing(sources, list(CLASSES), skipped)
