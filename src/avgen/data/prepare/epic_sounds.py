"""`epic_sounds` adapter: EPIC-Sounds segments (docs/datasets.md) sliced from EPIC-KITCHENS-100 videos by timestamps.

Layout: `RAW/EPIC_Sounds_train.csv`, `RAW/EPIC_Sounds_validation.csv` (columns annotation_id,
participant_id, video_id, start_timestamp, stop_timestamp, start_sample, stop_sample, description, class,
class_id) and `RAW/videos/<participant_id>/<video_id>.MP4`. The validation annotations become the `test` split.

Most segments are shorter than a clip. `short_segments` says what happens to a segment shorter than a clip
with its margins (`window_seconds`):
- `centre` (default): one window of `window_seconds` centred on the segment, taken from the source video
  (so it includes the sound's surroundings);
- `skip`: the segment is skipped and listed with the reason.
Longer segments are cut into clips inside their own time range.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avgen.data.prepare.base import Adapter, Listing, Source, require_dir

CSV_FILES = {"train": "EPIC_Sounds_train.csv", "test": "EPIC_Sounds_validation.csv"}
COLUMNS = ("annotation_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp", "class", "class_id")
POLICIES = ("centre", "skip")


def parse_timestamp(text: str) -> float:
    """`HH:MM:SS.fff` -> seconds."""
    hours, minutes, seconds = text.strip().split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


class EpicSoundsAdapter(Adapter):
    name = "epic_sounds"

    def __init__(self, window_seconds: float, short_segments: str = "centre", video_extension: str = ".MP4"):
        if short_segments not in POLICIES:
            raise ValueError(f"short_segments must be one of {POLICIES}, got {short_segments!r}")
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        self.window_seconds, self.short_segments = float(window_seconds), short_segments
        self.video_extension = video_extension

    def list_sources(self, raw: Path) -> Listing:
        root = require_dir(raw, "EPIC-Sounds: EPIC_Sounds_train.csv, EPIC_Sounds_validation.csv and videos/")
        absent = [f for f in CSV_FILES.values() if not (root / f).is_file()]
        if absent or not (root / "videos").is_dir():
            missing = absent + ([] if (root / "videos").is_dir() else ["videos/<participant_id>/<video_id>.MP4"])
            raise FileNotFoundError(f"RAW={root}: EPIC-Sounds layout is missing {', '.join(missing)}")
        rows = [(split, row) for split, name in CSV_FILES.items() for row in self._read(root / name)]
        classes = {int(row["class_id"]): row["class"] for _, row in rows}
        label_names = [classes.get(i, f"class_{i}") for i in range(max(classes, default=-1) + 1)]
        sources, skipped, missing_files = [], [], []
        for split, row in rows:
            path = root / "videos" / row["participant_id"] / f"{row['video_id']}{self.video_extension}"
            if not path.is_file():
                missing_files.append(str(path))
                continue
            start, stop = parse_timestamp(row["start_timestamp"]), parse_timestamp(row["stop_timestamp"])
            if stop - start < self.window_seconds:
                if self.short_segments == "skip":
                    skipped.append(
                        (
                            f"{row['annotation_id']} ({path})",
                            f"segment of {stop - start:.2f} s is shorter than a clip with margins "
                            f"({self.window_seconds:.2f} s) and short_segments=skip",
                        )
                    )
                    continue
                start = max(0.0, (start + stop) / 2 - self.window_seconds / 2)  # centred window
                stop = start + self.window_seconds
            sources.append(
                Source(
                    path=str(path),
                    source_id=row["annotation_id"],
                    split=split,
                    label=int(row["class_id"]),
                    caption=row["class"],
                    start=start,
                    end=stop,
                )
            )
        return Listing(sources, label_names, skipped, sorted(set(missing_files)))

    @staticmethod
    def _read(path: Path) -> list[dict[str, str]]:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise ValueError(f"{path}: missing columns {', '.join(absent)} (header: {reader.fieldnames})")
            rows = list(reader)
        for number, row in enumerate(rows, start=2):
            try:
                parse_timestamp(row["start_timestamp"]), parse_timestamp(row["stop_timestamp"]), int(row["class_id"])
            except (ValueError, AttributeError):
                raise ValueError(
                    f"{path} line {number}: expected HH:MM:SS.fff timestamps and an integer class_id, "
                    f"got {row['start_timestamp']!r}, {row['stop_timestamp']!r}, {row['class_id']!r}"
                ) from None
        return rows
