"""Building blocks of the dual U-Net (CMMD App. B, Table 4).

Internal layouts: video features (B, C, F, H, W), audio features (B, C, T). Video convolutions are "2D+1D":
a (1, 3, 3) spatial convolution per frame followed by a (3, 1, 1) temporal one; frames are never downsampled.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (B,) timesteps -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def zero_init(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


# Degenerate 3-D kernels can run as the 2-D convolutions they are (docs/performance.md). Parameters keep
# Conv3d's names and shapes, so checkpoints load either way. None (auto): per-frame 2-D convolutions on CUDA,
# where cuDNN's 3-D kernels for such shapes are the suspected bottleneck (`make gpu-check` times both);
# plain Conv3d elsewhere, since on the CPU the reshape copies cost more than oneDNN saves (`make bench`,
# conv_layout_*: the default experiment's step 7% slower per-frame). True / False force one path.
FACTORISED_CONVS: bool | None = None


def use_frame_convs(x: Tensor) -> bool:
    return x.is_cuda if FACTORISED_CONVS is None else FACTORISED_CONVS


@contextlib.contextmanager
def conv_layout(factorised: bool | None) -> Iterator[None]:
    """FACTORISED_CONVS set for the calls inside (benchmarks time both layouts in one process)."""
    global FACTORISED_CONVS
    previous, FACTORISED_CONVS = FACTORISED_CONVS, factorised
    try:
        yield
    finally:
        FACTORISED_CONVS = previous


class FrameConv(nn.Conv3d):
    """A (1, k, k) Conv3d applied as a Conv2d to every frame of (B, C, F, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        if not use_frame_convs(x):
            return super().forward(x)
        b, _, f, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * f, -1, h, w)  # (B, C, F, H, W) -> (B*F, C, H, W)
        y = F.conv2d(frames, self.weight.squeeze(2), self.bias, self.stride[1:], self.padding[1:])
        return y.unflatten(0, (b, f)).transpose(1, 2)  # (B*F, C', H', W') -> (B, C', F, H', W')


class TimeConv(nn.Conv3d):
    """A (k, 1, 1) Conv3d applied as a (k, 1) Conv2d over (B, C, F, H*W): a view, no copy."""

    def forward(self, x: Tensor) -> Tensor:
        if not use_frame_convs(x):
            return super().forward(x)
        b, _, f, h, w = x.shape
        y = F.conv2d(x.flatten(3), self.weight.squeeze(-1), self.bias, (self.stride[0], 1), (self.padding[0], 0))
        return y.unflatten(3, (h, w))  # (B, C', F, H*W) -> (B, C', F, H, W)


def spatial_conv(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    """2D convolution applied to every frame of (B, C, F, H, W)."""
    return FrameConv(cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))


def temporal_conv(cin: int, cout: int) -> nn.Conv3d:
    """1D convolution over the frames of (B, C, F, H, W) at every location."""
    return TimeConv(cin, cout, (3, 1, 1), padding=(1, 0, 0))


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, timestep scale/shift, GroupNorm -> SiLU -> zero-initialised conv; residual.

    Video ("2D+1D"): the first conv is spatial (per frame), the second temporal (across frames); audio: 1D both.
    """

    def __init__(self, kind: str, cin: int, cout: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        if kind == "video":
            conv1, conv2 = spatial_conv(cin, cout), temporal_conv(cout, cout)
        else:
            conv1, conv2 = nn.Conv1d(cin, cout, 3, padding=1), nn.Conv1d(cout, cout, 3, padding=1)
        self.norm1, self.conv1 = group_norm(cin), conv1
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.dropout, self.conv2 = group_norm(cout), nn.Dropout(dropout), zero_init(conv2)
        if cin == cout:
            self.skip = nn.Identity()
        else:
            self.skip = nn.Conv3d(cin, cout, 1) if kind == "video" else nn.Conv1d(cin, cout, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb)).reshape(*emb.shape[:1], -1, *([1] * (x.ndim - 2))).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.dropout(F.silu(h)))


class Downsample(nn.Module):
    """Halve H and W (video, never frames) or T (audio) with a strided convolution."""

    def __init__(self, kind: str, channels: int):
        super().__init__()
        if kind == "video":
            self.conv = spatial_conv(channels, channels, stride=2)
        else:
            self.conv = nn.Conv1d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, kind: str, channels: int):
        super().__init__()
        self.kind = kind
        self.conv = spatial_conv(channels, channels) if kind == "video" else nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, size: tuple[int, ...]) -> Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class TokenAttention(nn.Module):
    """Multi-head self-attention over (N, L, C) tokens, pre-LayerNorm, zero-initialised output, residual.

    `context` (N, L, Cc), when given, is normalised separately and concatenated to the tokens before the
    q/k/v projection: this is CMMD's easy fusion (the other modality enters as extra channels, and the
    self-attention mixes them: the paper's "implicit cross-attention"); the output projection returns to
    the branch width.
    """

    def __init__(self, channels: int, head_dim: int = 64, context_channels: int = 0):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = nn.LayerNorm(channels)
        self.context_norm = nn.LayerNorm(context_channels) if context_channels else None
        self.qkv = nn.Linear(channels + context_channels, 3 * channels)
        self.out = zero_init(nn.Linear(channels, channels))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        h = self.norm(x)
        if self.context_norm is not None:
            if context is None:
                raise ValueError("this attention block was built for easy fusion and needs a context")
            h = torch.cat([h, self.context_norm(context)], dim=-1)
        q, k, v = self.qkv(h).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # 3 x (N, heads, L, d)
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(1, 2).flatten(2))  # (N, heads, L, d) -> (N, L, C)


class VideoAttention(nn.Module):
    """Spatial attention (tokens of one frame) then temporal attention (one location across frames)."""

    def __init__(self, channels: int, head_dim: int, context_channels: int = 0):
        super().__init__()
        self.spatial = TokenAttention(channels, head_dim, context_channels)
        self.temporal = TokenAttention(channels, head_dim, context_channels)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x (B, C, F, H, W); context (B, Cc, F): per-frame features of the other modality, or None."""
        b, c, f, h, w = x.shape
        s = x.permute(0, 2, 3, 4, 1).reshape(b * f, h * w, c)  # (B, C, F, H, W) -> (B*F, H*W, C)
        ctx = None
        if context is not None:
            cc = context.shape[1]
            # (B, Cc, F) -> (B*F, H*W, Cc): the frame's audio feature at every location
            ctx = context.permute(0, 2, 1).reshape(b * f, 1, cc).expand(b * f, h * w, cc)
        s = self.spatial(s, ctx)
        t = s.reshape(b, f, h * w, c).transpose(1, 2).reshape(b * h * w, f, c)  # -> (B*H*W, F, C)
        if context is not None:
            # (B, Cc, F) -> (B*H*W, F, Cc)
            ctx = context.permute(0, 2, 1)[:, None].expand(b, h * w, f, cc).reshape(b * h * w, f, cc)
        t = self.temporal(t, ctx)
        return t.reshape(b, h, w, f, c).permute(0, 4, 3, 1, 2)  # (B*H*W, F, C) -> (B, C, F, H, W)


class AudioAttention(nn.Module):
    """Temporal self-attention over the audio sequence."""

    def __init__(self, channels: int, head_dim: int, context_channels: int = 0):
        super().__init__()
        self.attn = TokenAttention(channels, head_dim, context_channels)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x (B, C, T); context (B, Cc, T) or None."""
        ctx = context.transpose(1, 2) if context is not None else None  # (B, Cc, T) -> (B, T, Cc)
        return self.attn(x.transpose(1, 2), ctx).transpose(1, 2)  # (B, T, C) -> (B, C, T)
