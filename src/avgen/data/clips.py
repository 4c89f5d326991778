"""Clips out of batches: the one place the context margin is cut off, on the time axis that the store's
metadata records for each representation (batches carry it as `time_axis`, batch dimension included)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def narrow_time(x: Tensor, axis: int, margin: int) -> Tensor:
    """The clip without its context: drop `margin` frames at both ends of time axis `axis`."""
    return x.narrow(axis, margin, x.shape[axis] - 2 * margin)


def time_shift(x: Tensor, axis: int, margin: int, shift: Tensor) -> Tensor:
    """Per-sample windows displaced by `shift` frames ((B,) ints, |shift| <= margin) inside the context of
    time axis `axis`. Pass `shift` on the CPU: checking it there costs the accelerator no sync."""
    length = x.shape[axis] - 2 * margin
    if int(shift.abs().max()) > margin:
        raise ValueError(
            f"a time shift of {int(shift.abs().max())} frames needs that much context; "
            f"the batch has {margin} (raise data.margin_seconds)"
        )
    shift = shift.to(x.device)
    index = margin + shift[:, None] + torch.arange(length, device=x.device)[None]  # (B, L) source frames
    index = index.reshape(*index.shape[:1], *([1] * (axis - 1)), length, *([1] * (x.ndim - axis - 1)))
    return torch.take_along_dim(x, index.expand(*x.shape[:axis], length, *x.shape[axis + 1 :]), dim=axis)


def video_frames_to(frames: Tensor, seconds_per_frame: dict[str, float], modality: str) -> Tensor:
    """Shifts drawn in video frames, in `modality`'s frames (rounded), from each time axis' seconds per frame."""
    return torch.round(frames.double() * seconds_per_frame["video"] / seconds_per_frame[modality]).long()


def batch_size(batch: Any) -> int:
    """Samples in a batch: the leading size of its first tensor (every tensor of a batch shares it; Lightning's
    guess warns on a dict of several)."""
    if isinstance(batch, Tensor):
        return batch.shape[0]
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        if isinstance(item, (Tensor, dict, list, tuple)):
            found = batch_size(item)
            if found:
                return found
    return 0


def clips(batch: dict[str, Any], modalities: Iterable[str] = ("video", "audio")) -> dict[str, Tensor]:
    """{modality: the batch's clips without their context}."""
    return {m: narrow_time(batch[m], batch["time_axis"][m], batch["margin"][m]) for m in modalities}


def first_clips(
    loader: Iterable[dict[str, Any]],
    num: int,
    modalities: Iterable[str] = ("video", "audio"),
    device: torch.device | str = "cpu",
) -> tuple[dict[str, Tensor], dict[str, int]]:
    """The first `num` clips (context removed) of a loader, concatenated per modality, and their time axes."""
    out: dict[str, list[Tensor]] = {m: [] for m in modalities}
    axes: dict[str, int] = {}
    for batch in loader:
        axes = {m: batch["time_axis"][m] for m in out}
        for m, x in clips(batch, out).items():
            out[m].append(x)
        if sum(len(x) for x in next(iter(out.values()))) >= num:
            break
    return {m: torch.cat(x)[:num].to(device) for m, x in out.items()}, axes
