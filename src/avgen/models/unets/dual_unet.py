"""Easy-fusion dual U-Net (CMMD App. B, Table 4) with swappable coupling.

Two U-Nets of identical level structure, one per modality, run in lockstep and share one timestep
embedding. At every attention block the coupling (`couplings.py`) lets them exchange information.
With `modalities=("audio",)` or `("video",)` and coupling `none` it is a single-modal model (MMDisCo's bases).

Inputs/outputs (docs/methods.md#conventions): video (B, F, C, H, W), audio (B, C, T) or (B, C, T, M) (2-D
latents are folded to
C*M channels). Fully convolutional in time: train on 18 frames, generate 36.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from avgen.models.modalities import MODALITIES, check_modalities
from avgen.models.unets.blocks import (
    AudioAttention,
    Downsample,
    ResBlock,
    Upsample,
    VideoAttention,
    group_norm,
    spatial_conv,
    timestep_embedding,
    zero_init,
)
from avgen.models.unets.couplings import COUPLINGS, RandomShiftCrossAttention, audio_per_frame, video_per_audio_step


class Branch(nn.Module):
    """One modality's U-Net as a flat list of layers; `plan` names what each layer is."""

    def __init__(
        self,
        kind: str,
        in_channels: int,
        base: int,
        mult: Sequence[int],
        num_res_blocks: int,
        attention_levels: Sequence[int],
        head_dim: int,
        emb_dim: int,
        fusion: bool,
        dropout: float,
    ):
        super().__init__()
        self.kind = kind
        attn_cls = VideoAttention if kind == "video" else AudioAttention

        def conv(cin: int, cout: int) -> nn.Module:
            return spatial_conv(cin, cout) if kind == "video" else nn.Conv1d(cin, cout, 3, padding=1)

        self.plan: list[str] = []
        layers: list[nn.Module] = []

        def add(name: str, module: nn.Module) -> None:
            self.plan.append(name)
            layers.append(module)

        def attention(ch: int) -> nn.Module:
            return attn_cls(ch, head_dim, context_channels=ch if fusion else 0)

        ch = base * mult[0]
        add("in", conv(in_channels, ch))
        add("push", nn.Identity())
        skip_channels = [ch]
        for level, m in enumerate(mult):
            for _ in range(num_res_blocks):
                add("res", ResBlock(kind, ch, base * m, emb_dim, dropout))
                ch = base * m
                if level in attention_levels:
                    add("attn", attention(ch))
                add("push", nn.Identity())
                skip_channels.append(ch)
            if level < len(mult) - 1:
                add("down", Downsample(kind, ch))
                add("push", nn.Identity())
                skip_channels.append(ch)
        add("res", ResBlock(kind, ch, ch, emb_dim, dropout))
        add("attn", attention(ch))
        add("res", ResBlock(kind, ch, ch, emb_dim, dropout))
        for level, m in reversed(list(enumerate(mult))):
            for i in range(num_res_blocks + 1):
                add("pop_res", ResBlock(kind, ch + skip_channels.pop(), base * m, emb_dim, dropout))
                ch = base * m
                if level in attention_levels:
                    add("attn", attention(ch))
                if level > 0 and i == num_res_blocks:
                    add("up", Upsample(kind, ch))
        add("out", nn.Sequential(group_norm(ch), nn.SiLU(), zero_init(conv(ch, in_channels))))
        self.layers = nn.ModuleList(layers)


class DualUNet(nn.Module):
    """Joint (or single-modal) U-Net predicting one output per modality (v for CMMD)."""

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        video_channels: int = 3,  # C of the video input (3 pixels, 4 SD-VAE latents)
        audio_channels: int = 80,  # C of the audio input (mel bins; C*M for 2-D latents)
        base_channels: int = 128,  # width of the first level (paper: 128)
        channel_mult: Sequence[int] = (1, 2, 3, 4),
        num_res_blocks: int = 2,  # residual blocks per level on the way down
        attention_levels: Sequence[int] = (1, 2, 3),
        head_dim: int = 64,  # heads = channels // head_dim
        coupling: str = "easy_fusion",  # easy_fusion | rs_mma | none
        rs_window_frames: int = 1,  # RS-MMA window, in video frames
        dropout: float = 0.0,
        video_patch_size: int = 1,  # >1: space-to-depth of each frame before the U-Net (CPU configs)
        checkpointing: bool = False,  # recompute residual and attention blocks in the backward
    ):
        super().__init__()
        modalities = check_modalities(modalities, coupling, COUPLINGS)
        self.modalities, self.coupling = modalities, coupling
        self.checkpointing = checkpointing
        self.levels = len(channel_mult)
        self.base_channels = base_channels
        emb_dim = 4 * base_channels
        self.time_embed = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        fusion = coupling == "easy_fusion"
        self.patch = video_patch_size
        in_channels = {"video": video_channels * video_patch_size**2, "audio": audio_channels}
        self.branches = nn.ModuleDict(
            {
                m: Branch(
                    m,
                    in_channels[m],
                    base_channels,
                    channel_mult,
                    num_res_blocks,
                    attention_levels,
                    head_dim,
                    emb_dim,
                    fusion,
                    dropout,
                )
                for m in modalities
            }
        )
        self.plan = self.branches[modalities[0]].plan
        if coupling == "rs_mma":
            widths = [
                self.branches["video"].layers[i].spatial.norm.normalized_shape[0]
                for i, kind in enumerate(self.plan)
                if kind == "attn"
            ]
            self.cross = nn.ModuleList(RandomShiftCrossAttention(w, w, head_dim, rs_window_frames) for w in widths)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        missing = [m for m in self.modalities if m not in x]
        if missing:
            raise KeyError(f"DualUNet({self.modalities}) needs inputs {missing}")
        emb = self.time_embed(timestep_embedding(t, self.base_channels))
        h, shapes = {}, {}
        for m in self.modalities:
            h[m] = self._to_internal(m, x[m])
            shapes[m] = x[m].shape
        skips: dict[str, list[Tensor]] = {m: [] for m in self.modalities}
        attn_index = 0
        for i, kind in enumerate(self.plan):
            if kind == "attn":
                h = self._attention(i, attn_index, h)
                attn_index += 1
                continue
            for m in self.modalities:
                layer = self.branches[m].layers[i]
                if kind in ("in", "out", "down"):
                    h[m] = layer(h[m])
                elif kind == "res":
                    h[m] = self._run(layer, h[m], emb)
                elif kind == "push":
                    skips[m].append(h[m])
                elif kind == "pop_res":
                    h[m] = self._run(layer, torch.cat([h[m], skips[m].pop()], dim=1), emb)
                elif kind == "up":
                    h[m] = layer(h[m], skips[m][-1].shape[2:])
        return {m: self._from_internal(m, h[m], shapes[m]) for m in self.modalities}

    def _run(self, layer: nn.Module, *args: Any) -> Tensor:
        """A residual or attention block; with `checkpointing`, only its inputs are kept for the backward."""
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(layer, *args, use_reentrant=False)
        return layer(*args)

    def _attention(self, i: int, attn_index: int, h: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.coupling == "easy_fusion":
            v, a = h["video"], h["audio"]
            ctx_video = audio_per_frame(a, v.shape[2])  # (B, C, T) -> (B, C, F)
            ctx_audio = video_per_audio_step(v, a.shape[-1])  # (B, C, F, H, W) -> (B, C, T)
            return {
                "video": self._run(self.branches["video"].layers[i], v, ctx_video),
                "audio": self._run(self.branches["audio"].layers[i], a, ctx_audio),
            }
        h = {m: self._run(self.branches[m].layers[i], h[m]) for m in self.modalities}
        if self.coupling == "rs_mma":
            h["video"], h["audio"] = self.cross[attn_index](h["video"], h["audio"])
        return h

    def _to_internal(self, m: str, x: Tensor) -> Tensor:
        if m == "video":
            if x.ndim != 5:
                raise ValueError(f"video must be (B, F, C, H, W), got shape {tuple(x.shape)}")
            factor = 2 ** (self.levels - 1) * self.patch
            if x.shape[-1] % factor or x.shape[-2] % factor:
                raise ValueError(f"video H and W must be multiples of {factor}, got {tuple(x.shape[-2:])}")
            if self.patch > 1:
                x = F.pixel_unshuffle(x, self.patch)  # (B, F, C, H, W) -> (B, F, C*p*p, H/p, W/p)
            return x.permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) -> (B, C, F, H, W)
        if x.ndim == 4:
            x = x.permute(0, 1, 3, 2).flatten(1, 2)  # (B, C, T, M) -> (B, C*M, T)
        elif x.ndim != 3:
            raise ValueError(f"audio must be (B, C, T) or (B, C, T, M), got shape {tuple(x.shape)}")
        factor = 2 ** (self.levels - 1)
        if x.shape[-1] % factor:
            raise ValueError(f"audio length T must be a multiple of {factor} (2^(levels-1)), got {x.shape[-1]}")
        return x

    def _from_internal(self, m: str, h: Tensor, shape: torch.Size) -> Tensor:
        if m == "video":
            h = h.permute(0, 2, 1, 3, 4)  # (B, C, F, H, W) -> (B, F, C, H, W)
            return F.pixel_shuffle(h, self.patch) if self.patch > 1 else h  # -> (B, F, C, H, W)
        if len(shape) == 4:
            b, c, t, mm = shape
            return h.unflatten(1, (c, mm)).permute(0, 1, 3, 2)  # (B, C*M, T) -> (B, C, T, M)
        return h


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
