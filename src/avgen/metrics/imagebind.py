"""ImageBind scores (MMDisCo Tab. 2-3; docs/metrics.md): mean cosine similarity of paired embeddings.

IB-AV scores audio against video of the same pair, IB-TV and IB-TA the prompt against each modality. The
encoders are local TorchScript exports (`avgen.metrics.extractors.load_imagebind`); audio is resampled to the
encoder's rate (16 kHz for ImageBind). Sums are all-reduced under DDP. Scores are cosines in [-1, 1] (papers
print them x100). The embeddings are kept, so `calibrated()` gives each score's bootstrap interval over pairs
and its chance floor over derangements of the pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

from avgen.metrics.extractors import resample

PAIRS = {"ib_av": ("audio", "video"), "ib_tv": ("text", "video"), "ib_ta": ("text", "audio")}


class ImageBindScore(Metric):
    full_state_update = False
    higher_is_better = True

    def __init__(self, encoders: dict[str, Callable], sample_rate: int, model_rate: int = 16000, **kwargs):
        # every rank scores every sample (evaluation/sharding.py gathers them first): nothing to gather here
        super().__init__(**{"sync_on_compute": False, **kwargs})
        self.encoders, self.sample_rate, self.model_rate = encoders, sample_rate, model_rate
        for name in PAIRS:
            self.add_state(f"{name}_sum", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{name}_count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        for m in ("video", "audio", "text"):
            self.add_state(f"{m}_embeddings", default=[], dist_reduce_fx="cat")

    def _embed(self, modality: str, x) -> torch.Tensor:
        if modality not in self.encoders:
            raise KeyError(f"metrics.imagebind.{modality}: no encoder configured for the {modality} input given")
        if modality == "audio":
            x = torch.from_numpy(resample(x, self.sample_rate, self.model_rate))
        return F.normalize(self.encoders[modality](x).double(), dim=-1)

    @torch.no_grad()
    def update(
        self, video: torch.Tensor | None = None, audio: torch.Tensor | None = None, text: Sequence[str] | None = None
    ) -> None:
        """video (B, T, 3, H, W) in [0, 1]; audio (B, S) at `sample_rate`; text: B prompts. Any two or three."""
        given = {m: x for m, x in {"video": video, "audio": audio, "text": text}.items() if x is not None}
        emb = {m: self._embed(m, x) for m, x in given.items()}
        for m, e in emb.items():
            getattr(self, f"{m}_embeddings").append(e)
        for name, (a, b) in PAIRS.items():
            if a in emb and b in emb:
                cos = (emb[a] * emb[b]).sum(-1).to(getattr(self, f"{name}_sum").device)
                setattr(self, f"{name}_sum", getattr(self, f"{name}_sum") + cos.sum())
                setattr(self, f"{name}_count", getattr(self, f"{name}_count") + len(cos))

    def calibrated(self, seed: int = 0, num_derangements: int = 100) -> dict[str, dict]:
        """{score: {interval, floor, floor_std}}: bootstrap over pairs, floor over derangements of the pairs."""
        from torchmetrics.utilities import dim_zero_cat

        from avgen.metrics.stats import bootstrap_interval, derangements, safe_div

        out = {}
        for name, (a, b) in PAIRS.items():
            ea, eb = (getattr(self, f"{m}_embeddings") for m in (a, b))
            if len(ea) == 0 or len(eb) == 0:  # a list of batches, or one tensor after a DDP sync
                continue
            ea, eb = dim_zero_cat(ea).cpu().numpy(), dim_zero_cat(eb).cpu().numpy()  # (N, d) each
            cos = (ea * eb).sum(-1)
            columns = {"cos": cos, "ones": np.ones(len(cos))}
            out[name] = {"interval": bootstrap_interval(columns, lambda s: safe_div(s["cos"], s["ones"]), seed=seed)}
            if len(cos) >= 2:  # one pair has no other pair to be deranged with
                chance = [
                    float((ea[perm] * eb).sum(-1).mean()) for perm in derangements(len(cos), num_derangements, seed)
                ]
                out[name].update(floor=float(np.mean(chance)), floor_std=float(np.std(chance)))
        return out

    def compute(self) -> dict[str, torch.Tensor]:
        return {
            name: getattr(self, f"{name}_sum") / getattr(self, f"{name}_count")
            for name in PAIRS
            if getattr(self, f"{name}_count") > 0
        }
