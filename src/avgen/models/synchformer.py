"""Synchformer (Iashin et al. 2024, "Synchformer: Efficient Synchronization from Sparse Cues"): the audio-visual
offset classifier behind DeSync, written so that the public state dict av-benchmark loads
(`synchformer_state_dict.pth`, the 24-01-04T16-39-21 AudioSet model) loads here with `strict=True`.

Parts, named as the checkpoint's keys (github.com/hkchengrex/av-benchmark, av_bench/synchformer/):
- `vfeat_extractor`: Motionformer-style ViT-B/16 with divided space-time attention (divided_224_16x4.yaml:
  depth 12, 12 heads, 768 wide, 16-frame segments as 8 tubelets of 2x16x16, 224 px, separate spatial and
  temporal position embeddings), then a CLS transformer layer pooling each tubelet step's 14x14 patches:
  (B, S, 16, 3, 224, 224) -> (B, S, 8, 768).
- `afeat_extractor`: AST (HF ASTConfig: depth 12, 12 heads, 768 wide, 16x16 patches, stride 10) on 128-bin log
  mel segments of 66 frames, then a CLS transformer layer pooling the 12 frequency patches of each time step:
  (B, S, 66, 128) -> (B, S, 6, 768).
- `vproj`, `aproj`, `transformer`: the sync head (3 layers, 8 heads) over [OFF, 14x8 video, MOD, 14x6 audio]
  tokens with a learned position embedding of those 198 tokens, classifying the offset into 21 classes
  (-2.0 ... +2.0 s in 0.2 s steps).

Inputs as av-benchmark prepares them (extract_video.py, av_bench/extract.py): video at 25 fps, shorter side
resized to 224 (bicubic), centre crop, scaled to [-1, 1]; audio at 16 kHz, segments of 10240 samples (0.64 s,
step 0.32 s), torchaudio's MelSpectrogram(n_fft=1024, win 400, hop 160, 128 mels, power 2, HTK, no norm),
log(x + 1e-6), padded to 66 frames, (x - mean) / (2 std) with AST's AudioSet statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avgen.models.vit_mlp import Mlp

# fixed by the reference's configs (divided_224_16x4.yaml, ASTConfig, Synchformer's sync.yaml)
IMAGE_SIZE = 224
PATCH = 16
TUBELET = 2  # VIT.PATCH_SIZE_TEMP: frames per video token
SEGMENT_FRAMES = 16  # video frames per segment (0.64 s at 25 fps), step 8
SEGMENT_STEP_FRAMES = 8
VIDEO_FPS = 25.0
SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 10240  # audio samples per segment (0.64 s at 16 kHz), step 5120
SEGMENT_STEP_SAMPLES = 5120
MEL_BINS = 128
SPEC_FRAMES = 66  # AST max_length patched to the segment's spectrogram length (max_spec_t)
AUDIO_STRIDE = 10  # AST frequency and time stride
NUM_SEGMENTS = 14  # segments the sync head sees: 4.8 s (its position embedding holds 1 + 14*8 + 1 + 14*6)
NUM_OFFSETS = 21
AST_MEAN, AST_STD = -4.2677393, 4.5689974  # av_bench/extract.py encode_audio_with_sync
VIDEO_MEAN, VIDEO_STD = 0.5, 0.5  # divided_224_16x4.yaml DATA.MEAN / DATA.STD

GRID = IMAGE_SIZE // PATCH  # 14 patches a side
VIDEO_STEPS = SEGMENT_FRAMES // TUBELET  # 8 tokens in time per segment
AUDIO_FREQ_PATCHES = (MEL_BINS - PATCH) // AUDIO_STRIDE + 1  # 12 (ASTEmbeddings.get_shape)
AUDIO_TIME_PATCHES = (SPEC_FRAMES - PATCH) // AUDIO_STRIDE + 1  # 6


@dataclass(frozen=True)
class SynchformerConfig:
    """The widths and depths; the defaults are the public checkpoint's. Head widths are the reference's: 64 in
    the feature extractors (768 / 12 heads), 96 in the sync head (768 / 8 heads)."""

    dim: int = 768
    video_depth: int = 12
    audio_depth: int = 12
    sync_depth: int = 3
    mlp_ratio: int = 4

    @property
    def heads(self) -> int:
        return max(1, self.dim // 64)

    @property
    def sync_heads(self) -> int:
        return max(1, self.dim // 96)

    @property
    def hidden(self) -> int:
        return self.mlp_ratio * self.dim

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> SynchformerConfig:
        """The widths and depths a state dict of this layout was built with."""

        def depth(prefix: str) -> int:
            return len({k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix)})

        dim = state["vproj.weight"].shape[0]
        return cls(
            dim=dim,
            video_depth=depth("vfeat_extractor.blocks."),
            audio_depth=depth("afeat_extractor.ast.encoder.layer."),
            sync_depth=depth("transformer.blocks."),
            mlp_ratio=state["transformer.blocks.0.mlp.0.weight"].shape[0] // dim,
        )


# ---------------------------------------------------------------- aggregation (motionformer.py BaseEncoderLayer)


class ClsAggregation(nn.TransformerEncoderLayer):
    """A pre-norm transformer layer over [CLS, tokens] returning the CLS token: (N, L, D) -> (N, D)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__(
            dim,
            heads,
            hidden,
            dropout=0.0,
            activation=nn.GELU(),
            layer_norm_eps=1e-6,
            batch_first=True,
            norm_first=True,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return super().forward(x)[:, 0]


# ---------------------------------------------------------------- video: Motionformer (vit_helper.py)


class PatchEmbed(nn.Module):
    """The image patch embedding the reference keeps (unused: it only sized the position embedding)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)


class TubeletEmbed(nn.Module):
    """(N, 3, T, H, W) -> (N, T/2 * H/16 * W/16, D), time-major."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv3d(3, dim, kernel_size=(TUBELET, PATCH, PATCH), stride=(TUBELET, PATCH, PATCH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, D, t, h, w) -> (N, t*h*w, D)


class DividedAttention(nn.Module):
    """Divided attention (TimeSformer; vit_helper.DividedAttention): the CLS query attends to every token; the
    patch tokens attend within their group (a frame for space, a patch position for time) plus the CLS token."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, over_time: bool) -> torch.Tensor:
        b, n, d = x.shape
        patches = (n - 1) // frames
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, h, N, e)
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)  # (B, h, 1, e)

        def groups(t: torch.Tensor) -> torch.Tensor:
            t = t[:, :, 1:].unflatten(2, (frames, patches))  # (B, h, f*p, e) -> (B, h, f, p, e)
            return t.transpose(2, 3) if over_time else t  # time: (B, h, p, f, e) groups of frames per patch

        def with_cls(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            cls = t[:, :, :1, None].expand(-1, -1, g.shape[2], -1, -1)  # (B, h, groups, 1, e)
            return torch.cat([cls, g], dim=3)

        qg, kg, vg = groups(q), groups(k), groups(v)
        out = F.scaled_dot_product_attention(qg, with_cls(k, kg), with_cls(v, vg))  # (B, h, groups, L, e)
        out = (out.transpose(2, 3) if over_time else out).flatten(2, 3)  # back to (B, h, f*p, e)
        out = torch.cat([cls_out, out], dim=2).transpose(1, 2).reshape(b, n, d)  # (B, h, N, e) -> (B, N, D)
        return self.proj(out)


class DividedSpaceTimeBlock(nn.Module):
    """Time attention, then space attention, then the MLP, each pre-norm and residual (vit_helper.py)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=1e-6) for _ in range(3))
        self.attn, self.timeattn = DividedAttention(dim, heads), DividedAttention(dim, heads)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, over_time=True)
        x = x + self.attn(self.norm1(x), frames, over_time=False)
        return x + self.mlp(self.norm2(x))


class MotionFormer(nn.Module):
    """Segments (N, 3, 16, 224, 224) in [-1, 1] -> per tubelet step features (N, 8, D)."""

    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        d = cfg.dim
        self.patch_embed = PatchEmbed(d).requires_grad_(False)
        self.patch_embed_3d = TubeletEmbed(d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, GRID * GRID + 1, d))
        self.temp_embed = nn.Parameter(torch.zeros(1, VIDEO_STEPS, d))
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(d, cfg.heads, cfg.hidden) for _ in range(cfg.video_depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.spatial_attn_agg = ClsAggregation(d, cfg.heads, cfg.hidden)
        for p in (self.cls_token, self.pos_embed, self.temp_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def position(self) -> torch.Tensor:
        """`separate` embeddings (video_model_builder.forward_features): spatial tiled over time + temporal."""
        patches = self.pos_embed[:, 1:].repeat(1, VIDEO_STEPS, 1) + self.temp_embed.repeat_interleave(GRID * GRID, 1)
        return torch.cat([self.pos_embed[:, :1], patches], dim=1)  # (1, 1 + 8*196, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed_3d(x)  # (N, 8*196, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.position()
        for block in self.blocks:
            x = block(x, VIDEO_STEPS)
        x = self.norm(x[:, 1:])  # (N, 8*196, D), without CLS
        n, _, d = x.shape
        x = x.reshape(n * VIDEO_STEPS, GRID * GRID, d)  # (N, t*h*w, D) -> (N*t, h*w, D)
        return self.spatial_attn_agg(x).reshape(n, VIDEO_STEPS, d)  # (N*t, D) -> (N, t, D)


# ---------------------------------------------------------------- audio: AST (hf_src/modeling_ast.py)


class ASTPatchEmbeddings(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.projection = nn.Conv2d(1, dim, kernel_size=PATCH, stride=AUDIO_STRIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1).transpose(2, 3)  # (N, T, F) -> (N, 1, F, T)
        return self.projection(x).flatten(2).transpose(1, 2)  # (N, D, f, t) -> (N, f*t, D), frequency-major


class ASTEmbeddings(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embeddings = ASTPatchEmbeddings(dim)
        self.position_embeddings = nn.Parameter(torch.zeros(1, AUDIO_FREQ_PATCHES * AUDIO_TIME_PATCHES + 2, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embeddings(x)
        n = x.shape[0]
        tokens = [self.cls_token.expand(n, -1, -1), self.distillation_token.expand(n, -1, -1), x]
        return torch.cat(tokens, dim=1) + self.position_embeddings


class ASTSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _attention(x, self.query, self.key, self.value, self.heads)


class Dense(nn.Module):
    """A module holding one `dense` linear layer (the HF layout's attention.output / intermediate / output)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.dense = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class ASTAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention, self.output = ASTSelfAttention(dim, heads), Dense(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(x))


class ASTLayer(nn.Module):
    """Pre-norm ViT layer (ASTLayer): x + attn(ln(x)), then + dense(gelu(dense(ln(x))))."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.attention = ASTAttention(dim, heads)
        self.intermediate, self.output = Dense(dim, hidden), Dense(hidden, dim)
        self.layernorm_before = nn.LayerNorm(dim, eps=1e-12)  # ASTConfig.layer_norm_eps
        self.layernorm_after = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(F.gelu(self.intermediate(self.layernorm_after(x))))


class ASTEncoder(nn.Module):
    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        self.layer = nn.ModuleList(ASTLayer(cfg.dim, cfg.heads, cfg.hidden) for _ in range(cfg.audio_depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class ASTModel(nn.Module):
    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        self.embeddings = ASTEmbeddings(cfg.dim)
        self.encoder = ASTEncoder(cfg)
        self.layernorm = nn.LayerNorm(cfg.dim, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layernorm(self.encoder(self.embeddings(x)))


class AST(nn.Module):
    """Spectrogram segments (N, 66, 128) -> per time patch features (N, 6, D)."""

    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        self.ast = ASTModel(cfg)
        self.freq_attn_agg = ClsAggregation(cfg.dim, cfg.heads, cfg.hidden)
        for p in (self.ast.embeddings.cls_token, self.ast.embeddings.distillation_token):
            nn.init.trunc_normal_(p, std=0.02)
        nn.init.trunc_normal_(self.ast.embeddings.position_embeddings, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ast(x)[:, 2:]  # (N, 2 + f*t, D) -> (N, f*t, D), without CLS and distillation tokens
        n, _, d = x.shape
        x = x.reshape(n, AUDIO_FREQ_PATCHES, AUDIO_TIME_PATCHES, d).transpose(1, 2)  # (N, t, f, D)
        x = x.reshape(n * AUDIO_TIME_PATCHES, AUDIO_FREQ_PATCHES, d)  # (N*t, f, D)
        return self.freq_attn_agg(x).reshape(n, AUDIO_TIME_PATCHES, d)  # (N*t, D) -> (N, t, D)


# ---------------------------------------------------------------- sync head (transformer.py GlobalTransformer)


def _attention(x: torch.Tensor, query: nn.Linear, key: nn.Linear, value: nn.Linear, heads: int) -> torch.Tensor:
    """Multi-head self-attention with separate projections: (B, L, D) -> (B, L, D) before the output layer."""
    b, n, d = x.shape
    q, k, v = (f(x).reshape(b, n, heads, d // heads).transpose(1, 2) for f in (query, key, value))  # (B, h, L, e)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.key, self.query, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(_attention(x, self.query, self.key, self.value, self.heads))


class Block(nn.Module):
    """minGPT block: x + attn(ln1(x)), then + mlp(ln2(x))."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class PositionEmbedding(nn.Module):
    def __init__(self, length: int, dim: int):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.randn(1, length, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_emb


class GlobalTransformer(nn.Module):
    """[OFF, video, MOD, audio] tokens -> offset logits (B, 21) from the OFF token."""

    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        d = cfg.dim
        self.vis_in_lnorm, self.aud_in_lnorm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.OFF_tok = nn.Parameter(torch.randn(1, 1, d))
        self.MOD_tok = nn.Parameter(torch.randn(1, 1, d))
        length = 2 + NUM_SEGMENTS * (VIDEO_STEPS + AUDIO_TIME_PATCHES)  # 198
        self.pos_emb_cfg = PositionEmbedding(length, d)  # the reference's attribute name
        self.blocks = nn.Sequential(*(Block(d, cfg.sync_heads, cfg.hidden) for _ in range(cfg.sync_depth)))
        self.ln_f = nn.LayerNorm(d)
        self.off_head = nn.Linear(d, NUM_OFFSETS)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        b = v.shape[0]
        x = [self.OFF_tok.expand(b, -1, -1), self.vis_in_lnorm(v), self.MOD_tok.expand(b, -1, -1), self.aud_in_lnorm(a)]
        x = self.blocks(self.pos_emb_cfg(torch.cat(x, dim=1)))  # (B, 1 + Sv + 1 + Sa, D)
        return self.off_head(self.ln_f(x)[:, 0])


class Synchformer(nn.Module):
    def __init__(self, cfg: SynchformerConfig | None = None):
        super().__init__()
        cfg = cfg or SynchformerConfig()
        self.cfg = cfg
        self.vfeat_extractor = MotionFormer(cfg)
        self.afeat_extractor = AST(cfg)
        self.vproj, self.aproj = nn.Linear(cfg.dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim)
        self.transformer = GlobalTransformer(cfg)

    def video_features(self, segments: torch.Tensor) -> torch.Tensor:
        """(B, S, 16, 3, 224, 224) normalised frames -> (B, S, 8, D)."""
        b, s = segments.shape[:2]
        x = segments.flatten(0, 1).transpose(1, 2)  # (B*S, 16, 3, H, W) -> (B*S, 3, 16, H, W)
        return self.vfeat_extractor(x).unflatten(0, (b, s))

    def audio_features(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, S, 128, 66) normalised log mels -> (B, S, 6, D)."""
        b, s = mels.shape[:2]
        x = mels.flatten(0, 1).transpose(1, 2)  # (B*S, F, T) -> (B*S, T, F)
        return self.afeat_extractor(x).unflatten(0, (b, s))

    def offset_logits(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(B, 14, 8, D) and (B, 14, 6, D) segment features -> (B, 21) logits (Synchformer.compare_v_a)."""
        v = self.vproj(video).flatten(1, 2)  # (B, S*8, D)
        a = self.aproj(audio).flatten(1, 2)  # (B, S*6, D)
        return self.transformer(v, a)


# ---------------------------------------------------------------- inputs


def resize_center_crop(frames: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(T, 3, H, W) uint8-valued floats in [0, 255] -> (T, 3, size, size) in [-1, 1]: torchvision's v2
    Resize(size, bicubic, antialias) of uint8 frames (rounded back to uint8), CenterCrop, ToDtype(scale),
    Normalize(0.5, 0.5) (av_bench/data/video_dataset.py sync_transform)."""
    frames = frames.float()
    h, w = frames.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)  # torchvision _compute_resized_output_size
    out_hw = (size, new_long) if h <= w else (new_long, size)
    if (h, w) != out_hw:
        frames = F.interpolate(frames, size=out_hw, mode="bicubic", antialias=True, align_corners=False)
        frames = frames.round().clamp(0, 255)
    top, left = int(round((out_hw[0] - size) / 2.0)), int(round((out_hw[1] - size) / 2.0))
    x = frames[..., top : top + size, left : left + size] / 255.0
    return (x - VIDEO_MEAN) / VIDEO_STD


def frame_indices(num_frames: int, fps: float, duration: float, target_fps: float = VIDEO_FPS) -> torch.Tensor:
    """Source frame per output frame at `target_fps` over `duration` s: the nearest in time (as ffmpeg's fps
    filter, which av-benchmark's decoder applies, rounds timestamps to the nearest output frame)."""
    count = int(target_fps * duration + 1e-6)  # duration = frames / fps: no float shortfall
    idx = torch.floor(torch.arange(count, dtype=torch.float64) * fps / target_fps + 0.5).long()
    return idx.clamp(max=num_frames - 1)


def segments(x: torch.Tensor, size: int, step: int) -> torch.Tensor:
    """(L, ...) -> (S, size, ...) windows along the first axis, S = (L - size) // step + 1 (the partition in
    extract_video.py / extract.py)."""
    return x.unfold(0, size, step).movedim(-1, 1)  # (S, ..., size) -> (S, size, ...)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """(n_freqs, n_mels) triangular HTK-mel filters from 0 Hz to Nyquist, unnormalised (as
    torchaudio.functional.melscale_fbanks(mel_scale="htk", norm=None))."""
    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731  HTK mel scale
    m = torch.linspace(mel(0.0), mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    f = 700.0 * (10 ** (m / 2595.0) - 1.0)  # (n_mels + 2,) filter edges in Hz
    rising = (freqs[:, None] - f[None, :-2]) / (f[1:-1] - f[:-2])  # (n_freqs, n_mels)
    falling = (f[None, 2:] - freqs[:, None]) / (f[2:] - f[1:-1])
    return torch.clamp(torch.minimum(rising, falling), min=0).float()


def log_mel(wave: torch.Tensor) -> torch.Tensor:
    """(..., 10240) 16 kHz segments -> (..., 128, 66) normalised log mels (av_bench/extract.py
    encode_audio_with_sync with its MelSpectrogram(16000, win_length=400, hop_length=160, n_fft=1024, n_mels=128)):
    |STFT|^2 (periodic Hann of 400 centred in 1024, reflect-padded centred frames) -> mel -> log(x + 1e-6) ->
    zero-padded to 66 frames -> (x - mean) / (2 std)."""
    lead = wave.shape[:-1]
    window = torch.hann_window(400, periodic=True, dtype=wave.dtype, device=wave.device)
    spec = (
        torch.stft(
            wave.reshape(-1, wave.shape[-1]),
            n_fft=1024,
            hop_length=160,
            win_length=400,
            window=window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        ).abs()
        ** 2
    )  # (N, 513, frames)
    fb = mel_filterbank(513, MEL_BINS, SAMPLE_RATE).to(spec)
    mel = torch.log((spec.transpose(1, 2) @ fb).transpose(1, 2) + 1e-6)  # (N, 128, frames)
    mel = F.pad(mel, (0, max(0, SPEC_FRAMES - mel.shape[-1])))[..., :SPEC_FRAMES]
    mel = (mel - AST_MEAN) / (2 * AST_STD)
    return mel.reshape(*lead, MEL_BINS, SPEC_FRAMES)


def load_synchformer(path, key: str = "evaluate.desync.weights") -> Synchformer:
    """A Synchformer state dict (the layout of av-benchmark's synchformer_state_dict.pth) loaded strictly."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "vproj.weight" not in state:
        raise ValueError(f"{key}: {path} is not a Synchformer state dict (expected av-benchmark's layout)")
    model = Synchformer(SynchformerConfig.from_state_dict(state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{key}: {path} does not match the Synchformer layout: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    return model.eval()
