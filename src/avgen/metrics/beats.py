"""Beat hit rate (CMMD §4; docs/metrics.md), as a torchmetrics Metric (sums are all-reduced under DDP).

Beats come from librosa's beat tracker on the generated and on the ground-truth waveform of each pair; a
ground-truth beat is hit when a generated beat lies within `tolerance` seconds (CMMD reports +-100 ms and
+-500 ms). The rate is hits over all ground-truth beats of every pair seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np
import torch
from torchmetrics import Metric


def beat_times(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Beat times in seconds (librosa.beat.beat_track)."""
    _, frames = librosa.beat.beat_track(y=np.asarray(wav, dtype=np.float32), sr=sample_rate)
    return librosa.frames_to_time(frames, sr=sample_rate)


def beat_hits(generated: np.ndarray, reference: np.ndarray, tolerance: float) -> int:
    """Reference beats with a generated beat within +-tolerance seconds."""
    if len(generated) == 0:
        return 0
    return int(sum(np.min(np.abs(generated - b)) <= tolerance for b in reference))


class BeatHitRate(Metric):
    full_state_update = False
    higher_is_better = True

    def __init__(self, sample_rate: int, tolerances: Sequence[float] = (0.1, 0.5), **kwargs):
        # every rank scores every sample (evaluation/sharding.py gathers them first): nothing to gather here
        super().__init__(**{"sync_on_compute": False, **kwargs})
        self.sample_rate, self.tolerances = sample_rate, tuple(tolerances)
        self.add_state("hits", default=torch.zeros(len(self.tolerances), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("beats", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self, generated: Sequence[np.ndarray] | torch.Tensor, reference: Sequence[np.ndarray] | torch.Tensor
    ) -> None:
        """Batches of mono waveforms at `sample_rate`: (B, samples) arrays or lists of 1-D arrays."""
        for gen, ref in zip(generated, reference):
            gen = gen.detach().cpu().numpy() if isinstance(gen, torch.Tensor) else np.asarray(gen)
            ref = ref.detach().cpu().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
            g, r = beat_times(gen.reshape(-1), self.sample_rate), beat_times(ref.reshape(-1), self.sample_rate)
            self.hits += torch.tensor([beat_hits(g, r, tol) for tol in self.tolerances], device=self.hits.device)
            self.beats += len(r)

    def compute(self) -> dict[str, torch.Tensor]:
        rate = self.hits.float() / self.beats.clamp(min=1)
        return {f"beat_hit_rate_{int(round(tol * 1000))}ms": rate[i] for i, tol in enumerate(self.tolerances)}
