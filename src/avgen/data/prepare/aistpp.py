"""`aistpp` adapter: AIST++ music-choreography clips (docs/datasets.md), in either layout it is distributed in.

- Official: `RAW/splits/crossmodal_{train,val,test}.txt` name sequences with camera `cAll`
  (e.g. `gBR_sBM_cAll_d04_mBR0_ch01`); the videos are the AIST Dance DB files `RAW/videos/<name>.mp4` with
  the camera filled in (`gBR_sBM_c01_d04_mBR0_ch01.mp4`). `camera` picks the view (c01..c09).
- Pre-cut (MM-Diffusion's copy): RAW is a folder of clip files, optionally under `train/`, `val/`, `test/`
  folders; without them the split is a stable hash of the file name.

The label is the music genre, read from the sequence name's music id (`mBR0` -> break).
"""

from __future__ import annotations

import re
from pathlib import Path

from avgen.data.prepare.base import VIDEO_EXTENSIONS, Adapter, Listing, Source, require_dir
from avgen.data.prepare.folder import stable_fraction

# AIST Dance DB genre codes -> names (music ids are m<code><n>)
GENRES = {
    "BR": "break",
    "PO": "pop",
    "LO": "lock",
    "MH": "middle hip-hop",
    "LH": "LA-style hip-hop",
    "HO": "house",
    "WA": "waack",
    "KR": "krump",
    "JS": "street jazz",
    "JB": "ballet jazz",
}
SPLIT_FILES = {"train": "crossmodal_train.txt", "val": "crossmodal_val.txt", "test": "crossmodal_test.txt"}
_MUSIC = re.compile(r"_m([A-Z]{2})\d")
_CAMERA = re.compile(r"^c(All|\d{2})$")


def genre_code(name: str) -> str | None:
    match = _MUSIC.search(name)
    return match.group(1) if match and match.group(1) in GENRES else None


class AISTppAdapter(Adapter):
    name = "aistpp"

    def __init__(self, camera: str = "c01", test_fraction: float = 0.02):
        if not _CAMERA.match(camera) or camera == "cAll":
            raise ValueError(f"camera must be one of c01..c09, got {camera!r}")
        self.camera, self.test_fraction = camera, test_fraction

    def list_sources(self, raw: Path) -> Listing:
        root = require_dir(raw, "AIST++: splits/crossmodal_{train,val,test}.txt and videos/, or a folder of clips")
        if (root / "splits").is_dir():
            return self._official(root)
        clips = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not clips:
            raise FileNotFoundError(
                f"RAW={root}: expected AIST++ in its official layout (splits/crossmodal_train.txt, "
                "splits/crossmodal_val.txt, splits/crossmodal_test.txt and videos/*.mp4) or a folder of "
                "pre-cut clip files; found neither"
            )
        return self._precut(root, clips)

    def _official(self, root: Path) -> Listing:
        missing_lists = [f"splits/{f}" for f in SPLIT_FILES.values() if not (root / "splits" / f).is_file()]
        if missing_lists or not (root / "videos").is_dir():
            missing = missing_lists + ([] if (root / "videos").is_dir() else ["videos/"])
            raise FileNotFoundError(f"RAW={root}: AIST++ official layout is missing {', '.join(missing)}")
        sources, skipped, missing_files = [], [], []
        for split, filename in SPLIT_FILES.items():
            for line in (root / "splits" / filename).read_text().splitlines():
                sequence = line.strip()
                if not sequence:
                    continue
                name = sequence.replace("_cAll_", f"_{self.camera}_")
                path = root / "videos" / f"{name}.mp4"
                code = genre_code(sequence)
                if code is None:
                    skipped.append((f"{filename}: {sequence}", "not an AIST++ sequence name (no music id m<GENRE><n>)"))
                elif not path.is_file():
                    missing_files.append(str(path))
                else:
                    sources.append(self._source(path, name, split, code))
        return Listing(sources, list(GENRES.values()), skipped, missing_files)

    def _precut(self, root: Path, clips: list[Path]) -> Listing:
        sources, skipped = [], []
        for path in clips:
            rel = path.relative_to(root)
            code = genre_code(path.stem)
            if code is None:
                skipped.append((str(path), "file name carries no AIST++ music id (m<GENRE><n>)"))
                continue
            if rel.parts[0] in SPLIT_FILES:
                split = rel.parts[0]
            else:
                split = "test" if stable_fraction(rel.as_posix()) < self.test_fraction else "train"
            sources.append(self._source(path, rel.with_suffix("").as_posix(), split, code))
        return Listing(sources, list(GENRES.values()), skipped)

    @staticmethod
    def _source(path: Path, source_id: str, split: str, code: str) -> Source:
        label = list(GENRES).index(code)
        return Source(
            path=str(path),
            source_id=source_id,
            split=split,
            label=label,
            caption=f"a person dancing {GENRES[code]} to music",
        )
