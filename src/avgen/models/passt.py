"""PaSST (Koutini et al. 2022, "Efficient Training of Audio Transformers with Patchout"), the AudioSet tagging
transformer whose 768-d embedding and 527 logits av-benchmark's FD-PaSST, KL-PaSST and IS-PaSST read.

av-benchmark runs `hear21passt.base.get_basic_model(mode="all")` (kkoutini/passt_hear21, its fork
hkchengrex/passt_hear21): the checkpoint `passt-s-f128-p16-s10-ap.476-swa.pt` (PaSST release v0.0.1-audioset)
in a DeiT-style distilled ViT (`passt_s_swa_p16_128_ap476`: 768 wide, 12 blocks of 12 heads, 16 x 16 patches
with stride 10 over a 128 x 998 input: a 12 x 99 patch grid) behind its mel front end `AugmentMelSTFT`.

The layout is that of the checkpoint (hear21passt `models/passt.py` `PaSST`, loaded there with strict=True), so
that it loads with `strict=True`: `patch_embed.proj` (Conv2d 1 -> 768, kernel 16, stride 10), the separate
frequency and time positional embeddings (`freq_new_pos_embed` (1, 768, 12, 1), `time_new_pos_embed`
(1, 768, 1, 99)), `new_pos_embed` (1, 2, 768) for the `cls_token` and `dist_token`, `blocks.<i>` (pre-norm
attention and GELU MLP, LayerNorm eps 1e-6, qkv with bias), `norm`, `head` (LayerNorm (eps 1e-5) + Linear to
527) and `head_dist` (Linear). The front end holds no checkpoint state (its window and mel banks are built).

Inference only: patchout (structured and unstructured) and dropout act only in training, and av-benchmark
builds the model with no patchout at all; the front end's frequency-range and SpecAugment-style masking are
off in eval mode. Outputs (the wrapper's `mode="all"` concatenation, split by av-benchmark): the embedding is the
mean of the final-normed cls and dist tokens (768), the logits are `head` of it (527; the model is trained
with a sigmoid, the metrics apply a softmax as av-benchmark does).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avgen.models.vit_mlp import Mlp

SAMPLE_RATE = 32000
CLIP_SAMPLES = 320000  # av-benchmark pads (zeros, at the end) or cuts every clip to the model's 10 s
NUM_CLASSES = 527  # AudioSet
EMBED_DIM = 768
DEPTH = 12
HEAD_DIM = 64  # 768 / 12 heads: every published PaSST
PATCH, STRIDE = 16, 10
INPUT_SIZE = (128, 998)  # (mel bins, frames) the positional embeddings were sized for: a 12 x 99 grid

# hear21passt base.get_basic_model's AugmentMelSTFT: 128 mel bins at 32 kHz, 25 ms periodic=False Hann window
# (800) zero-padded to a 1024-point STFT, 10 ms hop; mel banks over [fmin, fmax] = [0, sr / 2 - fmax_aug_range / 2]
# = [0, 15000] Hz in eval (fmax=None, fmax_aug_range=2000); preemphasis y[n] = x[n + 1] - 0.97 x[n]
N_MELS, N_FFT, WIN_LENGTH, HOP = 128, 1024, 800, 320
FMIN, FMAX = 0.0, 15000.0
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5  # log(mel + 1e-5)
NORM_SHIFT, NORM_SCALE = 4.5, 5.0  # (log mel + 4.5) / 5: the reference's "fast normalization"


def grid_size(input_size: tuple[int, int] = INPUT_SIZE) -> tuple[int, int]:
    """The positional embeddings' (frequency, time) grid: input size // stride, as the reference sizes it."""
    return input_size[0] // STRIDE, input_size[1] // STRIDE


def kaldi_mel_banks(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, fmin: float = FMIN, fmax: float = FMAX
) -> np.ndarray:
    """Kaldi's triangular mel filters (torchaudio.compliance.kaldi.get_mel_banks with no VTLN warp), (n_mels,
    n_fft // 2 + 1), float64: triangles on the mel scale 1127 ln(1 + f / 700), n_mels + 2 equally spaced edges
    over [fmin, fmax], evaluated at the n_fft // 2 bin frequencies k sr / n_fft; the Nyquist bin gets a zero
    column (as the reference pads)."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)  # noqa: E731
    delta = (mel(fmax) - mel(fmin)) / (n_mels + 1)
    edges = mel(fmin) + delta * np.arange(n_mels + 2)  # left of bin i: edges[i], centre edges[i+1], right edges[i+2]
    bins = mel(sample_rate / n_fft * np.arange(n_fft // 2))[None]  # (1, n_fft // 2)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up, down = (bins - left) / (centre - left), (right - bins) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1)))


class MelFrontEnd(nn.Module):
    """AugmentMelSTFT in eval mode: wave (B, S) at 32 kHz -> normalised log mel (B, 128, 1 + (S - 1) // 320)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH, periodic=False), persistent=False)
        banks = torch.tensor(kaldi_mel_banks(), dtype=torch.float32)
        self.register_buffer("mel_banks", banks, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave[:, 1:] - PREEMPHASIS * wave[:, :-1]  # (B, S - 1)
        spec = torch.stft(
            x,
            N_FFT,
            hop_length=HOP,
            win_length=WIN_LENGTH,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )  # (B, 513, T): the window zero-padded to N_FFT in the middle
        power = spec.real.square() + spec.imag.square()
        with torch.autocast(wave.device.type, enabled=False):  # the reference keeps the mel product in float32
            mel = self.mel_banks @ power.float()  # (128, 513) @ (B, 513, T) -> (B, 128, T)
        return ((mel + LOG_OFFSET).log() + NORM_SHIFT) / NORM_SCALE


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, PATCH, stride=STRIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, 1, F, T) -> (B, E, F', T')


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        # softmax(q k^T / sqrt(head dim)) v, heads side by side
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, d / H)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PaSST(nn.Module):
    """Wave (B, S) at 32 kHz -> {"embedding": (B, 768), "logits": (B, 527), "probabilities": (B, 527)}; the
    probabilities are the sigmoid of the logits (the model's own multi-label output), for reference only.

    The published model is the default; `embed_dim`, `depth` and `num_classes` follow a checkpoint's shapes
    (`from_state`: PaSST-L is 7 blocks deep), `num_heads` is embed_dim / 64 as in every published PaSST."""

    def __init__(
        self,
        embed_dim: int = EMBED_DIM,
        depth: int = DEPTH,
        num_classes: int = NUM_CLASSES,
        input_size: tuple[int, int] = INPUT_SIZE,
    ):
        super().__init__()
        freq, time = grid_size(input_size)
        self.mel = MelFrontEnd()
        self.patch_embed = PatchEmbed(embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))  # for the cls and dist tokens
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, freq, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, time))
        self.blocks = nn.Sequential(*[Block(embed_dim, max(1, embed_dim // HEAD_DIM)) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        self.head_dist = nn.Linear(embed_dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A random initialisation with live outputs (stand-in weights for tests): truncated normals (std 0.02)
        for tokens, positional embeddings and linear layers, as the reference initialises before loading."""
        for name in ("cls_token", "dist_token", "new_pos_embed", "freq_new_pos_embed", "time_new_pos_embed"):
            nn.init.trunc_normal_(getattr(self, name), std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> PaSST:
        """A PaSST of the width, depth and class count a state dict has (its positional grid must fit 128 mel
        bins and 10 s: the layout of every published AudioSet PaSST at 10 ms hop)."""
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        return cls(state["cls_token"].shape[-1], depth, state["head_dist.weight"].shape[0])

    def tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, T) -> the final-normed sequence (B, 2 + F' T', E): cls, dist, then the patches
        frequency-major; the time positional embedding cut to the input's T' (the reference's cut)."""
        x = self.patch_embed(mel)  # (B, E, F', T')
        x = x + self.time_new_pos_embed[..., : x.shape[-1]] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)  # (B, F' T', E)
        b = x.shape[0]
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        return self.norm(self.blocks(torch.cat([cls, dist, x], 1)))

    def forward_mel(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.tokens(mel)
        embedding = (x[:, 0] + x[:, 1]) / 2
        logits = self.head(embedding)
        return {"embedding": embedding, "logits": logits, "probabilities": torch.sigmoid(logits)}

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_mel(self.mel(wave)[:, None])


def fit_clip(wave: torch.Tensor, samples: int = CLIP_SAMPLES) -> torch.Tensor:
    """(B, S) -> (B, samples): av-benchmark's PaSST input, the first 10 s, or the clip followed by zeros."""
    if wave.shape[-1] >= samples:
        return wave[..., :samples]
    return F.pad(wave, (0, samples - wave.shape[-1]))


def checkpoint_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint as the reference's loader reads it (`checkpoint_filter_fn` and timm's
    `adapt_input_conv` for one input channel): a `model` entry unwrapped, a flattened patch projection
    reshaped to (E, 1, 16, 16), a 3-channel one summed over its channels."""
    state = dict(checkpoint["model"] if "model" in checkpoint else checkpoint)
    w = state.get("patch_embed.proj.weight")
    if w is not None and w.dim() < 4:
        w = w.reshape(w.shape[0], -1, PATCH, PATCH)
    if w is not None and w.shape[1] != 1:
        w = w.float().sum(1, keepdim=True).to(w.dtype)
    if w is not None:
        state["patch_embed.proj.weight"] = w
    return state
