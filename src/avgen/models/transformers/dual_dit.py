"""Dual-stream diffusion transformer for joint audio-video flow matching (docs/methods.md#flow-matching).

One token stream per modality, each with its own weights: self-attention and an MLP per block, both
modulated by the flow time through adaptive LayerNorm with zero-initialised gates (DiT's adaLN-Zero). The
streams are coupled at every block by
- `joint`: one attention over both token sets (each stream its own projections; MM-DiT, as in SD3 and
  LTX-2's joint blocks),
- `cross`: each stream's self-attention, then cross-attention from its tokens to the other stream's
  (Ovi's twin-backbone fusion),
- `none`: no exchange (the no-coupling baseline: two independent transformers in one module; also a
  single-modal model when `modalities` has one entry).

Tokens: video (B, F, C, H, W) -> one token per p x p patch of each frame; audio (B, C, T) -> one token per
k frames ((B, C, T, M) 2-D latents fold M into C). Positions are rotary only (`rotary.py`): the temporal
part is each token's time in seconds, so a video frame and the audio frames of the same instant share
their temporal phase; video tokens add row and column parts. No learned positions: any length in time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from avgen.models.modalities import MODALITIES, check_modalities
from avgen.models.transformers.rotary import apply_rotary, rotary_angles
from avgen.models.unets.blocks import timestep_embedding, zero_init

COUPLINGS = ("joint", "cross", "none")


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """DiT's adaptive LayerNorm: x * (1 + scale) + shift, per example (shift, scale: (B, 1, D))."""
    return x * (1 + scale) + shift


class QKNormAttentionProjections(nn.Module):
    """q, k, v projections with RMS-normalised queries and keys (stable attention logits at bf16)."""

    def __init__(self, dim: int, heads: int, kv_only: bool = False):
        super().__init__()
        self.heads = heads
        self.to_q = None if kv_only else nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.q_norm = nn.RMSNorm(dim // heads, eps=1e-6)
        self.k_norm = nn.RMSNorm(dim // heads, eps=1e-6)

    def split_heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, N, D) -> (B, heads, N, d)

    def query(self, x: Tensor, angles: Tensor) -> Tensor:
        return apply_rotary(self.q_norm(self.split_heads(self.to_q(x))), angles)

    def key_value(self, x: Tensor, angles: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.to_kv(x).chunk(2, dim=-1)
        return apply_rotary(self.k_norm(self.split_heads(k)), angles), self.split_heads(v)


def merge_heads(x: Tensor) -> Tensor:
    return x.transpose(1, 2).flatten(2)  # (B, heads, N, d) -> (B, N, D)


class StreamBlock(nn.Module):
    """One modality's half of a block: its attention projections, MLP, cross-attention and adaLN."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cross: bool):
        super().__init__()
        self.norm_attention = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attention = QKNormAttentionProjections(dim, heads)
        self.attention_out = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.cross = cross
        if cross:  # queries from this stream, keys and values from the other stream's normalised tokens
            self.norm_cross = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.cross_query = QKNormAttentionProjections(dim, heads)
            self.cross_context = QKNormAttentionProjections(dim, heads, kv_only=True)
            self.cross_out = nn.Linear(dim, dim)
        # shift, scale, gate for attention and MLP (+ cross-attention), from the time embedding; zero at init
        self.modulation = nn.Sequential(nn.SiLU(), zero_init(nn.Linear(dim, (9 if cross else 6) * dim)))


class DualStreamBlock(nn.Module):
    def __init__(self, modalities: Sequence[str], dim: int, heads: int, mlp_ratio: float, coupling: str):
        super().__init__()
        self.coupling = coupling
        self.streams = nn.ModuleDict({m: StreamBlock(dim, heads, mlp_ratio, coupling == "cross") for m in modalities})

    def forward(self, h: dict[str, Tensor], c: Tensor, angles: dict[str, Tensor]) -> dict[str, Tensor]:
        mods = {m: s.modulation(c).unsqueeze(1).chunk(9 if s.cross else 6, dim=-1) for m, s in self.streams.items()}
        q, k, v = {}, {}, {}
        for m, s in self.streams.items():
            x = modulate(s.norm_attention(h[m]), mods[m][0], mods[m][1])
            q[m] = s.attention.query(x, angles[m])
            k[m], v[m] = s.attention.key_value(x, angles[m])
        if self.coupling == "joint" and len(self.streams) == 2:
            # one attention over both token sets: (B, heads, N_a + N_v, d)
            names = list(self.streams)
            lengths = [q[m].shape[2] for m in names]
            o = F.scaled_dot_product_attention(*(torch.cat([t[m] for m in names], dim=2) for t in (q, k, v)))
            out = dict(zip(names, o.split(lengths, dim=2)))
        else:
            out = {m: F.scaled_dot_product_attention(q[m], k[m], v[m]) for m in self.streams}
        h = {m: h[m] + mods[m][2] * s.attention_out(merge_heads(out[m])) for m, s in self.streams.items()}
        if self.coupling == "cross":
            h = self._cross(h, mods, angles)
        return {
            m: h[m] + mods[m][5] * s.mlp(modulate(s.norm_mlp(h[m]), mods[m][3], mods[m][4]))
            for m, s in self.streams.items()
        }

    def _cross(self, h: dict[str, Tensor], mods: dict, angles: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each stream attends to the other's tokens (both read the states after self-attention)."""
        normed = {m: s.norm_cross(h[m]) for m, s in self.streams.items()}
        out = {}
        for m, s in self.streams.items():
            other = "video" if m == "audio" else "audio"
            q = s.cross_query.query(modulate(normed[m], mods[m][6], mods[m][7]), angles[m])
            k, v = s.cross_context.key_value(normed[other], angles[other])
            out[m] = h[m] + mods[m][8] * s.cross_out(merge_heads(F.scaled_dot_product_attention(q, k, v)))
        return out


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_features: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), zero_init(nn.Linear(dim, 2 * dim)))
        self.linear = zero_init(nn.Linear(dim, out_features))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.modulation(c).unsqueeze(1).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DualStreamDiT(nn.Module):
    """Joint (or single-modal) transformer predicting one output per modality (the flow velocity)."""

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        video_channels: int = 3,  # C of the video input (3 pixels, 4 SD-VAE latents)
        audio_channels: int = 80,  # C of the audio input (mel bins; C*M for 2-D latents)
        video_frame_seconds: float = 0.1,  # seconds per video frame (checked against the store by the method)
        audio_frame_seconds: float = 0.016,  # seconds per audio frame (mel hop / sample rate)
        width: int = 512,  # token width of both streams
        depth: int = 12,  # dual-stream blocks
        heads: int = 8,
        mlp_ratio: float = 4.0,
        coupling: str = "joint",  # joint | cross | none
        video_patch_size: int = 2,  # p: one token per p x p patch of a frame
        audio_patch_frames: int = 1,  # k: one token per k audio frames
        rope_axes: Sequence[int] | None = None,  # channels per head for (time, row, column); default d/2, d/4, d/4
        rope_base: float = 10000.0,
        checkpointing: bool = False,  # recompute each block in the backward instead of keeping its activations
    ):
        super().__init__()
        modalities = check_modalities(modalities, coupling, COUPLINGS)
        self.checkpointing = checkpointing
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        head_dim = width // heads
        rope_axes = tuple(rope_axes) if rope_axes is not None else (head_dim // 2, head_dim // 4, head_dim // 4)
        if sum(rope_axes) != head_dim or any(d % 2 for d in rope_axes):
            raise ValueError(f"rope_axes {rope_axes} must be even and sum to the head width {head_dim}")
        self.modalities, self.coupling, self.width = modalities, coupling, width
        self.video_patch, self.audio_patch = video_patch_size, audio_patch_frames
        self.seconds_per_frame = {"video": float(video_frame_seconds), "audio": float(audio_frame_seconds)}
        self.rope_axes, self.rope_base = rope_axes, rope_base
        patch_features = {"video": video_channels * video_patch_size**2, "audio": audio_channels * audio_patch_frames}
        self.embed = nn.ModuleDict({m: nn.Linear(patch_features[m], width) for m in modalities})
        self.time_embed = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(
            DualStreamBlock(modalities, width, heads, mlp_ratio, coupling) for _ in range(depth)
        )
        self.final = nn.ModuleDict({m: FinalLayer(width, patch_features[m]) for m in modalities})

    # ---------------------------------------------------------------------------------------- positions
    def positions(self, m: str, grid: tuple[int, ...], device: torch.device) -> Tensor:
        """(N, 3) token positions (time in video frames, row, column) in token order; audio rows/columns 0.

        Time is in units of one video frame: time_seconds / video_frame_seconds."""
        unit = self.seconds_per_frame["video"]
        if m == "video":
            frames, rows, cols = grid
            f, r, c = torch.meshgrid(torch.arange(frames), torch.arange(rows), torch.arange(cols), indexing="ij")
            time = f * self.seconds_per_frame["video"] / unit
            pos = torch.stack([time.double(), r.double(), c.double()], dim=-1).flatten(0, 2)
        else:
            (tokens,) = grid
            time = torch.arange(tokens, dtype=torch.float64) * self.audio_patch * self.seconds_per_frame["audio"] / unit
            pos = torch.stack([time, torch.zeros_like(time), torch.zeros_like(time)], dim=-1)
        return pos.to(device)

    # ---------------------------------------------------------------------------------- tokens and back
    def token_count(self, shapes: dict[str, tuple[int, ...]]) -> int:
        """Tokens per sample over every stream, for per-sample shapes {modality: (F, C, H, W) or (C, T[, M])}:
        the grids `tokens` makes, from meta tensors (no memory, no compute)."""
        grids = (self.tokens(m, torch.empty(1, *shapes[m], device="meta"))[1] for m in self.modalities)
        return sum(math.prod(grid) for grid in grids)

    def tokens(self, m: str, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """x -> (B, N, patch features) and the token grid."""
        if m == "video":
            if x.ndim != 5:
                raise ValueError(f"video must be (B, F, C, H, W), got shape {tuple(x.shape)}")
            b, f, c, hh, ww = x.shape
            p = self.video_patch
            if hh % p or ww % p:
                raise ValueError(f"video H and W must be multiples of video_patch_size {p}, got {(hh, ww)}")
            x = x.reshape(b, f, c, hh // p, p, ww // p, p).permute(0, 1, 3, 5, 2, 4, 6)  # -> (B, F, H/p, W/p, C, p, p)
            return x.reshape(b, f * (hh // p) * (ww // p), c * p * p), (f, hh // p, ww // p)
        if x.ndim == 4:
            x = x.permute(0, 1, 3, 2).flatten(1, 2)  # (B, C, T, M) -> (B, C*M, T)
        elif x.ndim != 3:
            raise ValueError(f"audio must be (B, C, T) or (B, C, T, M), got shape {tuple(x.shape)}")
        b, c, t = x.shape
        k = self.audio_patch
        if t % k:
            raise ValueError(f"audio length T must be a multiple of audio_patch_frames {k}, got {t}")
        x = x.reshape(b, c, t // k, k).permute(0, 2, 1, 3)  # (B, C, T, ) -> (B, T/k, C, k)
        return x.reshape(b, t // k, c * k), (t // k,)

    def untokens(self, m: str, x: Tensor, shape: torch.Size) -> Tensor:
        if m == "video":
            b, f, c, hh, ww = shape
            p = self.video_patch
            x = x.reshape(b, f, hh // p, ww // p, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)  # -> (B, F, C, H/p, p, W/p, p)
            return x.reshape(shape)
        if len(shape) == 4:
            b, c, t, mm = shape
            folded = self.untokens(m, x, torch.Size((b, c * mm, t)))
            return folded.unflatten(1, (c, mm)).permute(0, 1, 3, 2)  # (B, C*M, T) -> (B, C, T, M)
        b, c, t = shape
        return x.reshape(b, t // self.audio_patch, c, self.audio_patch).permute(0, 2, 1, 3).reshape(shape)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        missing = [m for m in self.modalities if m not in x]
        if missing:
            raise KeyError(f"DualStreamDiT({self.modalities}) needs inputs {missing}")
        c = self.time_embed(timestep_embedding(t, 256))
        h, angles = {}, {}
        for m in self.modalities:
            tokens, grid = self.tokens(m, x[m])
            h[m] = self.embed[m](tokens)
            angles[m] = rotary_angles(self.positions(m, grid, tokens.device), self.rope_axes, self.rope_base)
        for block in self.blocks:
            if self.checkpointing and torch.is_grad_enabled():  # keeps only each block's inputs for the backward
                h = checkpoint(block, h, c, angles, use_reentrant=False)
            else:
                h = block(h, c, angles)
        return {m: self.untokens(m, self.final[m](h[m], c), x[m].shape) for m in self.modalities}
