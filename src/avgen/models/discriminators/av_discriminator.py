"""MMDisCo's audio-video discriminator (paper A.3, A.8; docs/methods.md#mmdisco): d_phi(a_t, v_t, t) -> one
logit per pair.

Two independent streams of ResBlocks (GroupNorm -> SiLU -> conv; adaptive GroupNorm scale/shift from the
timestep embedding -> SiLU -> zero-initialised conv; residual skip), no attention in the streams. The video
stream uses 2D (per frame) + 1D (over frames) convolutions and downsamples space only; the audio stream uses
1D convolutions over the aligned time axis and never downsamples it (a waveform first goes through one strided
stem, `audio_stem_stride`, to a feature rate: 25,600 samples at full rate would cost more than the bases).
Both are pooled to per-frame features, (B, F, Cv) and (B, T, Ca), then fused into one logit by a head.
Pooling a frame's features over space makes them blind to where things are (convolutions are translation
equivariant): a ball hitting a wall, the event the synthetic audio marks, looks like a ball anywhere else.
`video_coords` gives the video stem two coordinate channels (x, y in [-1, 1]; CoordConv), so pooled
features can encode position and motion, and the discriminator can see when an event happens. Heads:

- `mlp` (default): audio features averaged onto the video frames, concatenated per frame, an MLP per frame,
  then the mean over frames: non-separable, so the video guidance depends on the audio;
- `transformer`: one joint token sequence (video frames + audio steps, modality and time embeddings), a
  small transformer encoder, mean-pooled (paper A.8);
- `linear`: the official release's head, time-averaged streams concatenated into one linear layer. Its logit
  is f_v(v) + f_a(a) + b, so grad_v d does not depend on a: it cannot express alignment (kept to compare).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from avgen.models.unets.blocks import Downsample, ResBlock, spatial_conv, timestep_embedding
from avgen.models.unets.couplings import audio_per_frame

HEADS = ("mlp", "transformer", "linear")


class Stream(nn.Module):
    """One modality's ResBlock stream: (B, C, F, H, W) -> (B, F, C') or (B, C, T) -> (B, T, C')."""

    def __init__(
        self,
        kind: str,
        in_channels: int,
        base: int,
        mult: Sequence[int],
        blocks: int,
        emb_dim: int,
        stem_stride: int = 1,
        coords: bool = False,
    ):
        super().__init__()
        self.kind, self.coords = kind, coords
        if kind == "video":  # a strided stem downsamples space only (frames stay aligned with the audio)
            conv = spatial_conv(in_channels + 2 * coords, base, stride=stem_stride)
        elif stem_stride > 1:  # a waveform: one strided stem to a feature rate, then the same stream
            conv = nn.Conv1d(in_channels, base, 2 * stem_stride, stride=stem_stride, padding=stem_stride // 2)
        else:
            conv = nn.Conv1d(in_channels, base, 3, padding=1)
        self.stem = conv
        layers, ch = [], base
        for level, m in enumerate(mult):
            for _ in range(blocks):
                layers.append(ResBlock(kind, ch, base * m, emb_dim))
                ch = base * m
            if kind == "video" and level < len(mult) - 1:
                layers.append(Downsample("video", ch))  # space only; the time axis stays aligned
        self.layers = nn.ModuleList(layers)
        self.out_channels = ch

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        if self.coords:
            x = torch.cat([x, coordinate_channels(x)], dim=1)  # (B, C, F, H, W) -> (B, C + 2, F, H, W)
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        if self.kind == "video":
            return h.mean(dim=(-2, -1)).transpose(1, 2)  # (B, C, F, H, W) -> (B, F, C)
        return h.transpose(1, 2)  # (B, C, T) -> (B, T, C)


class AVDiscriminator(nn.Module):
    def __init__(
        self,
        video_channels: int = 3,  # C of the video input
        audio_channels: int = 1,  # C of the audio input (C*M for 2-D latents)
        base_channels: int = 128,
        channel_mult: Sequence[int] = (1, 2, 4),
        blocks_per_level: int = 2,
        head: str = "mlp",  # mlp | transformer | linear
        head_dim: int = 256,  # width of the fusion head
        transformer_layers: int = 2,
        transformer_heads: int = 4,
        time_embed_dim: int | None = None,  # width of the timestep embedding; None = base_channels (paper: 12.7M)
        audio_stem_stride: int = 1,  # >1 for waveforms: samples per audio feature step (e.g. 160 at 16 kHz)
        video_stem_stride: int = 1,  # >1: the first conv downsamples each frame (space only), e.g. 2
        text_dims: dict[str, int] | None = None,  # pooled text width per modality (out of domain: CLAP, CLIP)
        video_coords: bool = False,  # x, y coordinate channels for the video stem (see the module docstring)
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head_kind, self.base_channels = head, base_channels
        emb_dim = time_embed_dim or base_channels
        self.time_embed = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        # MMDisCo §4.3: per-modality projections of pooled text embeddings, added to the timestep embedding
        self.text_proj = nn.ModuleDict({m: nn.Linear(d, emb_dim) for m, d in (text_dims or {}).items()})
        self.video = Stream(
            "video",
            video_channels,
            base_channels,
            channel_mult,
            blocks_per_level,
            emb_dim,
            stem_stride=video_stem_stride,
            coords=video_coords,
        )
        self.audio = Stream(
            "audio",
            audio_channels,
            base_channels,
            channel_mult,
            blocks_per_level,
            emb_dim,
            stem_stride=audio_stem_stride,
        )
        cv, ca = self.video.out_channels, self.audio.out_channels
        if head == "linear":
            self.fuse = nn.Linear(cv + ca, 1)
        elif head == "mlp":
            self.fuse = nn.Sequential(nn.Linear(cv + ca, head_dim), nn.SiLU(), nn.Linear(head_dim, head_dim), nn.SiLU())
            self.out = nn.Linear(head_dim, 1)
        else:
            self.proj_v, self.proj_a = nn.Linear(cv, head_dim), nn.Linear(ca, head_dim)
            self.modality = nn.Parameter(torch.zeros(2, head_dim))
            layer = nn.TransformerEncoderLayer(
                head_dim, transformer_heads, 4 * head_dim, dropout=0.0, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, transformer_layers)
            self.out = nn.Linear(head_dim, 1)

    def forward(self, x: dict[str, Tensor], t: Tensor, text: dict[str, Tensor] | None = None) -> Tensor:
        """x: {"video": (B, F, C, H, W), "audio": (B, C, T) or (B, C, T, M)}; text: {"audio": (B, Da),
        "video": (B, Dv)} pooled prompt embeddings (a text discriminator needs them; the empty prompt's for
        unconditional calls); returns logits (B,)."""
        emb = self.time_embed(timestep_embedding(t, self.base_channels))
        if len(self.text_proj) and text is None:
            raise ValueError(
                "this discriminator is text-conditioned (text_dims): pass text= (empty-prompt "
                "embeddings for an unconditional call)"
            )
        emb_v = emb + self.text_proj["video"](text["video"].to(emb)) if len(self.text_proj) else emb
        emb_a = emb + self.text_proj["audio"](text["audio"].to(emb)) if len(self.text_proj) else emb
        audio = x["audio"]
        if audio.ndim == 4:
            audio = audio.permute(0, 1, 3, 2).flatten(1, 2)  # (B, C, T, M) -> (B, C*M, T)
        fv = self.video(x["video"].permute(0, 2, 1, 3, 4), emb_v)  # (B, F, C, H, W) -> (B, F, Cv)
        fa = self.audio(audio, emb_a)  # (B, T, Ca)
        if self.head_kind == "linear":  # separable: f_v(v) + f_a(a) + b
            return self.fuse(torch.cat([fv.mean(1), fa.mean(1)], dim=-1)).squeeze(-1)
        if self.head_kind == "mlp":
            fa_frames = audio_per_frame(fa.transpose(1, 2), fv.shape[1]).transpose(1, 2)  # (B, T, Ca) -> (B, F, Ca)
            return self.out(self.fuse(torch.cat([fv, fa_frames], dim=-1)).mean(1)).squeeze(-1)
        pv, pa = self.proj_v(fv), self.proj_a(fa)  # (B, F, D), (B, T, D)
        tokens = torch.cat(
            [pv + self.modality[0] + _time_code(pv.shape[1], pv), pa + self.modality[1] + _time_code(pa.shape[1], pa)],
            dim=1,
        )  # (B, F+T, D)
        # the math kernel: L_dsm differentiates through the input gradient, and the fused kernels
        # (flash, memory-efficient) have no double backward
        with sdpa_kernel(SDPBackend.MATH):
            return self.out(self.encoder(tokens).mean(1)).squeeze(-1)


def coordinate_channels(x: Tensor) -> Tensor:
    """x and y of every pixel in [-1, 1], broadcast over batch and frames: (B, C, F, H, W) -> (B, 2, F, H, W)."""
    b, _, f, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, H, W): x then y
    return grid[None, :, None].expand(b, 2, f, h, w)


def _time_code(length: int, ref: Tensor) -> Tensor:
    """Sinusoidal code of each token's position in [0, 1) of the clip, so audio and video tokens of the same
    moment get the same code whatever their rates: (length, D)."""
    d = ref.shape[-1] if ref.shape[-1] % 2 == 0 else ref.shape[-1] - 1
    pos = torch.arange(length, device=ref.device, dtype=torch.float32) / length * 1000.0
    code = timestep_embedding(pos, d)
    return F.pad(code, (0, ref.shape[-1] - d)).to(ref.dtype)
