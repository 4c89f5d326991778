"""Real and fake pairs side by side, for discriminators that tell them apart (MMDisCo §3.2; docs/methods.md#mmdisco).

The fakes come from a fake-pair store (sampled in advance from the bases: `methods/mmdisco/fake_cache.py`,
`make fake-cache`) or, as ablations, are real clips whose audio is another clip's (`fakes: deranged`) or its
own displaced in time (`fakes: shifted`): alignment-only fakes, whose marginals equal the real ones.
"""

from __future__ import annotations

import zlib

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader

from avgen.data.clips import clips, time_shift, video_frames_to
from avgen.data.datamodule import AVDataModule
from avgen.data.store import Store


class RealFakeDataModule(L.LightningDataModule):
    """Real pairs (any store) and the fake-pair cache, drawn side by side in every training batch."""

    def __init__(
        self, real: AVDataModule, fake_store: str, fakes: str = "bases", shift_frames: tuple[int, int] = (2, 4)
    ):
        super().__init__()
        if fakes not in FAKES:
            raise ValueError(f"data.fakes must be one of {', '.join(FAKES)}, got {fakes!r}")
        if not 1 <= shift_frames[0] <= shift_frames[1]:
            raise ValueError(f"data.shift_frames must satisfy 1 <= min <= max, got {list(shift_frames)}")
        self.real, self.fake_store, self.fakes = real, fake_store, fakes
        self.shift_frames = tuple(shift_frames)

    @property
    def store(self) -> Store:
        return self.real.store

    @property
    def batch_size(self) -> int:
        return self.real.batch_size

    @property
    def splits(self) -> dict[str, str]:
        return self.real.splits

    def dataset(self, stage: str):
        return self.real.dataset(stage)

    def setup(self, stage: str | None = None) -> None:
        self.real.setup(stage)

    def train_dataloader(self) -> CombinedLoader:
        if self.fakes in ("deranged", "shifted"):  # the ablations: real pairs, misaligned
            # shifted fakes read their displaced audio from the stored context: as much as the largest shift
            margin = self.real.margin_seconds
            if self.fakes == "shifted":
                margin = max(margin, self.shift_frames[1] * self.real.store.rep(self.real.video).seconds_per_frame)
            fake = AVDataModule(
                self.real.store_path,
                self.real.video,
                self.real.audio,
                batch_size=self.real.batch_size,
                seed=self.real.seed + 1,
                margin_seconds=margin,
            )
            fake.setup("fit")
            fake.trainer = self.trainer
            fakes = AlignmentFakes(fake.train_dataloader(), self.fakes, self.shift_frames, self.real.seed)
        else:
            fake = AVDataModule(
                self.fake_store,
                self.real.video,
                self.real.audio,
                batch_size=self.real.batch_size,
                train_split="fake",
                seed=self.real.seed + 1,
            )
            fake.trainer = self.trainer  # shard over the same ranks and resume with the same progress
            fakes = fake.train_dataloader()
        return CombinedLoader({"real": self.real.train_dataloader(), "fake": fakes}, mode="max_size_cycle")

    def val_dataloader(self):
        return self.real.val_dataloader()

    def reference_loader(self):
        return self.real.reference_loader()


class AlignmentFakes:
    """Alignment-only fakes (ablations, MMDisCo fidelity): real clips whose audio is another clip's of the same
    batch (`deranged`: wrong content and timing) or its own displaced by `shift_frames` video frames either way
    inside the stored context (`shifted`: right content, wrong timing, as CMMD's time-shift negatives). Real
    and fake pairs then have the same marginals and differ in alignment alone. The shifts are drawn from the
    batch's clip ids and the seed, so a resumed run draws the same ones."""

    def __init__(self, loader, kind: str, shift_frames: tuple[int, int] = (2, 4), seed: int = 0):
        self.loader, self.kind, self.shift_frames, self.seed = loader, kind, shift_frames, seed

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            x = clips(batch)
            if self.kind == "deranged":
                audio = x["audio"].roll(1, dims=0)  # (i+1) mod B: no fixed point
            else:
                audio = time_shift(
                    batch["audio"], batch["time_axis"]["audio"], batch["margin"]["audio"], self.shifts(batch)
                )
            yield {**batch, "video": x["video"], "audio": audio}

    def shifts(self, batch) -> torch.Tensor:
        """(B,) audio frames: +-[lo, hi] video frames, converted with the store's seconds per frame."""
        g = torch.Generator().manual_seed(zlib.crc32(",".join(batch["id"]).encode()) ^ self.seed)
        b = len(batch["id"])
        lo, hi = self.shift_frames
        sign = torch.where(torch.rand(b, generator=g) < 0.5, -1, 1)
        return video_frames_to(sign * torch.randint(lo, hi + 1, (b,), generator=g), batch["seconds_per_frame"], "audio")


FAKES = ("bases", "deranged", "shifted")
