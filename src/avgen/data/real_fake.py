"""Real and fake pairs side by side, for discriminators that tell them apart (MMDisCo §3.2; docs/methods.md#mmdisco).

The fakes come from a fake-pair store (sampled in advance from the bases: `methods/mmdisco/fake_cache.py`,
`make fake-cache`) or, as an ablation, are real clips whose audio is another clip's (`fakes: deranged`).
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import CombinedLoader

from avgen.data.clips import clips
from avgen.data.datamodule import AVDataModule
from avgen.data.store import Store


class RealFakeDataModule(L.LightningDataModule):
    """Real pairs (any store) and the fake-pair cache, drawn side by side in every training batch."""

    def __init__(self, real: AVDataModule, fake_store: str, fakes: str = "bases"):
        super().__init__()
        if fakes not in ("bases", "deranged"):
            raise ValueError(f"data.fakes must be bases or deranged, got {fakes!r}")
        self.real, self.fake_store, self.fakes = real, fake_store, fakes

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
        if self.fakes == "deranged":  # the ablation: real pairs with another clip's audio
            fake = AVDataModule(self.real.store_path, self.real.video, self.real.audio,
                                batch_size=self.real.batch_size, seed=self.real.seed + 1,
                                margin_seconds=self.real.margin_seconds)
            fake.setup("fit")
            fake.trainer = self.trainer
            fakes = DerangedPairs(fake.train_dataloader())
        else:
            fake = AVDataModule(self.fake_store, self.real.video, self.real.audio, batch_size=self.real.batch_size,
                                train_split="fake", seed=self.real.seed + 1)
            fake.trainer = self.trainer  # shard over the same ranks and resume with the same progress
            fakes = fake.train_dataloader()
        return CombinedLoader({"real": self.real.train_dataloader(), "fake": fakes}, mode="max_size_cycle")

    def val_dataloader(self):
        return self.real.val_dataloader()


class DerangedPairs:
    """Alignment-only fakes (an ablation, `data.fakes=deranged`): real clips whose audio is another clip's of
    the same batch, so real and fake pairs have the same marginals and differ in alignment alone."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            x = clips(batch)
            yield {**batch, "video": x["video"], "audio": x["audio"].roll(1, dims=0)}  # (i+1) mod B: no fixed point
