"""`synthetic` adapter: the embedded dataset, generated on demand into RAW, then read like any user data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avgen.data.prepare.base import Adapter, Listing, Source
from avgen.data.synthetic import CLASS_NAMES, SPLITS, SyntheticConfig, generate, read_truth


class SyntheticAdapter(Adapter):
    """Generates the synthetic mp4s into RAW if needed (resumable), then lists them with their labels."""

    name = "synthetic"

    def __init__(self, generate_missing: bool = True, workers: int = 0, **generator: Any):
        self.config = SyntheticConfig(**{k: tuple(v) if k == "bounce_interval" else v for k, v in generator.items()})
        self.generate_missing = generate_missing
        self.workers = workers

    def list_sources(self, raw: Path) -> Listing:
        raw = Path(raw)
        if self.generate_missing:
            generate(self.config, raw, workers=self.workers)
        elif not (raw / "dataset.json").is_file():
            raise FileNotFoundError(f"RAW={raw}: expected a synthetic dataset (dataset.json, train/, test/)")
        sources, skipped = [], []
        for split in SPLITS:
            for mp4 in sorted((raw / split).glob("*.mp4")):
                truth = read_truth(mp4)
                if truth is None:
                    skipped.append((str(mp4), "no ground-truth sidecar (.json)"))
                    continue
                colour = CLASS_NAMES[truth["label"]]
                sources.append(
                    Source(
                        path=str(mp4),
                        source_id=mp4.stem,
                        split=split,
                        label=truth["label"],
                        caption=f"a {colour} ball bouncing",
                    )
                )
        return Listing(sources, CLASS_NAMES[: self.config.num_classes], skipped)
