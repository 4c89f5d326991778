"""Rotary position embeddings (RoPE; Su et al. 2021) over several axes, the temporal one in seconds.

Each head's channels are split into pairs; pair i of axis a is rotated by angle `position_a * freq_i`.
The temporal axis takes each token's time in units of `time_unit` seconds, so tokens of two modalities at
the same instant get the same temporal phase whatever their frame rates (JavisDiT's and Ovi's aligned
positions); the other axes (video rows and columns) take integer grid positions, 0 for audio tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def rotary_frequencies(dim: int, base: float = 10000.0) -> Tensor:
    """(dim/2,) frequencies base^(-2i/dim) of one axis's `dim` channels (RoFormer Eq. 15)."""
    if dim % 2:
        raise ValueError(f"a rotary axis needs an even number of channels, got {dim}")
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def rotary_angles(positions: Tensor, dims: Sequence[int], base: float = 10000.0) -> Tensor:
    """(N, len(dims)) positions -> (N, sum(dims)/2) angles, axis a using dims[a] channels."""
    if positions.shape[-1] != len(dims):
        raise ValueError(f"positions have {positions.shape[-1]} axes, dims {len(dims)}")
    parts = [
        positions[:, a, None].double() * rotary_frequencies(d, base).to(positions.device)
        for a, d in enumerate(dims)
        if d
    ]
    return torch.cat(parts, dim=-1).float()


def apply_rotary(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (B, heads, N, d) by angles (N, d/2)."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)
