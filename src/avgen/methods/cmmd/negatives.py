"""CMMD negatives (paper §2.2): time shift, segment swap and full swap, applied to audio or to video.

All amounts are drawn in seconds and converted to each modality's frames with its seconds-per-frame (from
the store metadata, never from shapes). Inputs carry `margin` frames of context on both sides of the clip
(the data module loads them): a time-shifted negative is the window displaced inside that context, so it
has no wrapped or zero-padded edge that would give it away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from avgen.data.clips import narrow_time, time_shift, video_frames_to

KINDS = ("time_shift", "segment_swap", "full_swap")


def segment_swap(x: Tensor, other: Tensor, axis: int, split: Tensor, other_first: Tensor) -> Tensor:
    """concat(other[:split], x[split:]) where `other_first`, else concat(x[:split], other[split:]) on time
    axis `axis`. x, other: clips without context; split: (B,) frame index per sample; other_first: (B,) bool.
    """
    frames = torch.arange(x.shape[axis], device=x.device)
    before = frames[None] < split[:, None]  # (B, L)
    take_other = torch.where(other_first[:, None], before, ~before)  # (B, L)
    take_other = take_other.reshape(
        *take_other.shape[:1], *([1] * (axis - 1)), x.shape[axis], *([1] * (x.ndim - axis - 1))
    )
    return torch.where(take_other, other, x)


def partner_permutation(batch: int, generator: torch.Generator | None = None, device=None) -> Tensor:
    """A permutation without fixed points (a roll by 1..B-1): every example gets another example's clip."""
    if batch < 2:
        raise ValueError("swap negatives need a batch of at least 2")
    offset = int(torch.randint(1, batch, (), generator=generator))
    return (torch.arange(batch, device=device) + offset) % batch


@dataclass
class NegativeSampler:
    """Draws one negative per example for each modality with a configurable mix of kinds.

    weights: relative frequency of time_shift, segment_swap, full_swap (0 disables a kind).
    shift_frames: (min, max) time shift in *video* frames (paper: 2-4 at 10 fps), either direction.
    split_range: segment-swap split point as a fraction of the clip, uniform in this range.
    """

    time_shift: float = 1.0
    segment_swap: float = 1.0
    full_swap: float = 1.0
    shift_frames: tuple[int, int] = (2, 4)
    split_range: tuple[float, float] = (0.25, 0.75)

    def __post_init__(self) -> None:
        if min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"negative weights must be >= 0 with a positive sum, got {self.weights}")
        lo, hi = self.shift_frames
        if not 1 <= lo <= hi:
            raise ValueError(f"shift_frames must satisfy 1 <= min <= max, got {self.shift_frames}")

    @property
    def weights(self) -> tuple[float, float, float]:
        return (self.time_shift, self.segment_swap, self.full_swap)

    def __call__(
        self, batch: dict[str, Any], modality: str, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Negatives for one modality of a batch (its clips with context, `margin`, `time_axis` and
        `seconds_per_frame`): (B, ...) clips without context, and the kind index of each (B,)."""
        x_full, margin, axis = batch[modality], batch["margin"][modality], batch["time_axis"][modality]
        seconds_per_frame = batch["seconds_per_frame"]
        b, device = x_full.shape[0], x_full.device
        x = narrow_time(x_full, axis, margin)
        kinds_cpu = torch.multinomial(torch.tensor(self.weights), b, replacement=True, generator=generator)
        kinds = kinds_cpu.to(device)
        out = x.clone()
        # time shift: seconds drawn in video frames, converted to this modality's frames (on the CPU, where
        # time_shift checks them without a device sync)
        lo, hi = self.shift_frames
        shift_video = torch.randint(lo, hi + 1, (b,), generator=generator)
        sign = torch.where(torch.rand(b, generator=generator) < 0.5, -1, 1)
        shift = video_frames_to(sign * shift_video, seconds_per_frame, modality)
        shifted = time_shift(x_full, axis, margin, torch.where(kinds_cpu == 0, shift, torch.zeros_like(shift)))
        # swaps: another example's clip (never the positive's own)
        perm = partner_permutation(b, generator, device)
        length = x.shape[axis]
        clip_seconds = length * seconds_per_frame[modality]
        frac = torch.empty(b).uniform_(*self.split_range, generator=generator)
        split = torch.round(frac * clip_seconds / seconds_per_frame[modality]).long().clamp(1, length - 1).to(device)
        other_first = (torch.rand(b, generator=generator) < 0.5).to(device)
        swapped = segment_swap(x, x[perm], axis, split, other_first)
        mask = lambda k: (kinds == k).reshape(b, *([1] * (x.ndim - 1)))  # noqa: E731
        out = torch.where(mask(0), shifted, out)
        out = torch.where(mask(1), swapped, out)
        out = torch.where(mask(2), x[perm], out)
        return out, kinds
