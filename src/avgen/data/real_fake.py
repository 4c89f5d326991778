"""Real and fake pairs side by side, for discriminators that tell them apart (MMDisCo §3.2; docs/methods.md#mmdisco).

The fakes come from a fake-pair store (sampled in advance from the bases: `methods/mmdisco/fake_cache.py`,
`make fake-cache`) or, as ablations, are real clips whose audio is another clip's (`fakes: deranged`) or its
own displaced in time (`fakes: shifted`): alignment-only fakes, whose marginals equal the real ones. `mixed`
puts both kinds in every batch: the bases' pairs and, for a fraction of the rows, shifted real pairs.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader

from avgen.data.clips import clips, time_shift, video_frames_to
from avgen.data.datamodule import AVDataModule
from avgen.data.store import Store


class RealFakeDataModule(L.LightningDataModule):
    """Real pairs (any store) and the fake-pair cache, drawn side by side in every training batch."""

    def __init__(
        self,
        real: AVDataModule,
        fake_store: str,
        fakes: str = "bases",
        shift_frames: tuple[int, int] = (2, 4),
        shifted_fraction: float = 0.5,
    ):
        super().__init__()
        if fakes not in FAKES:
            raise ValueError(f"data.fakes must be one of {', '.join(FAKES)}, got {fakes!r}")
        if not 1 <= shift_frames[0] <= shift_frames[1]:
            raise ValueError(f"data.shift_frames must satisfy 1 <= min <= max, got {list(shift_frames)}")
        if not 0.0 <= shifted_fraction <= 1.0:
            raise ValueError(f"data.shifted_fraction must be in [0, 1], got {shifted_fraction}")
        self.real, self.fake_store, self.fakes = real, fake_store, fakes
        self.shift_frames, self.shifted_fraction = tuple(shift_frames), float(shifted_fraction)

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
        if self.fakes == "bases":
            fakes = self._base_fakes()
        elif self.fakes == "mixed":
            fakes = MixedFakes(self._base_fakes(), self._alignment_fakes("shifted"), self.shifted_fraction)
        else:
            fakes = self._alignment_fakes(self.fakes)
        return CombinedLoader({"real": self.real.train_dataloader(), "fake": fakes}, mode="max_size_cycle")

    def _base_fakes(self):
        """The fake-pair store's loader: pairs the bases sampled."""
        fake = AVDataModule(
            self.fake_store,
            self.real.video,
            self.real.audio,
            batch_size=self.real.batch_size,
            train_split="fake",
            seed=self.real.seed + 1,
        )
        fake.trainer = self.trainer  # shard over the same ranks and resume with the same progress
        return fake.train_dataloader()

    def _alignment_fakes(self, kind: str) -> AlignmentFakes:
        """Real pairs, misaligned (`deranged` or `shifted`)."""
        # shifted fakes read their displaced audio from the stored context: as much as the largest shift
        margin = self.real.margin_seconds
        if kind == "shifted":
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
        return AlignmentFakes(fake.train_dataloader(), kind, self.shift_frames, self.real.seed)

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


class MixedFakes:
    """`fakes: mixed` (an ablation of MMDisCo's fakes): each batch of the bases' fake pairs with its last
    round(fraction x B) rows replaced by shifted real pairs. The paper's fakes alone let a discriminator
    separate real from fake by realism (the bases' samples differ from the data) and ignore alignment; the
    shifted rows differ from real pairs in alignment only. The discriminator then estimates neither
    p_real / (p_a p_v) nor p_real / p_shifted but the ratio to their mixture."""

    def __init__(self, bases: Iterable[dict], shifted: Iterable[dict], fraction: float = 0.5):
        self.bases, self.shifted, self.fraction = bases, shifted, fraction

    def __len__(self) -> int:
        return len(self.bases)

    def __iter__(self) -> Iterator[dict]:
        shifted = _forever(self.shifted)
        for fake in self.bases:
            n = len(fake["caption"])
            k = round(self.fraction * n)
            if k == 0:
                yield fake
                continue
            other = next(shifted)
            k = min(k, len(other["caption"]))
            out = {m: torch.cat([fake[m][: n - k], other[m][:k]]) for m in ("video", "audio")}  # (B, ...) each
            yield {**out, "caption": list(fake["caption"][: n - k]) + list(other["caption"][:k])}


def _forever(loader: Iterable[dict]) -> Iterator[dict]:
    """A loader's batches again and again (a new epoch of its order each time round)."""
    while True:
        yield from loader


FAKES = ("bases", "deranged", "shifted", "mixed")
BASE_FAKES = ("bases", "mixed")  # the kinds that read the fake-pair store (sampled from the bases)
