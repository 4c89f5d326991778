"""VGGish (Hershey et al. 2017), the AudioSet VGG whose 128-d embeddings of 0.96 s log-mel examples FAD and
av-benchmark's FD-VGGish compare.

The layout is that of harritaylor/torchvggish's `vggish-10086976.pth` (`features.*` convolutions,
`embeddings.*` fully connected layers), which loads with `strict=True`. As av-benchmark (`av_bench/vggish/`,
following audioldm_eval) uses it: no PCA/quantisation postprocessing, and no ReLU after the last linear layer.
The input pipeline is the reference `mel_features.py` / `vggish_input.py`, in numpy: 16 kHz, 25 ms periodic-Hann
frames every 10 ms, |rfft| of 512 points, 64 HTK mel bands over 125-7500 Hz (the DC bin weighted 0),
log(mel + 0.01), non-overlapping 96-frame examples (a partial last example dropped).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
WINDOW, HOP, FFT = 400, 160, 512  # 25 ms, 10 ms at 16 kHz; the next power of 2 above the window
MEL_BINS, MEL_MIN_HZ, MEL_MAX_HZ = 64, 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames, hop 0.96 s
EMBEDDING_DIM = 128


def frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(S, ...) -> (n, length, ...) complete frames every `hop` (none padded)."""
    n = 1 + (x.shape[0] - length) // hop
    if n < 1:
        raise ValueError(f"VGGish needs at least {length} samples/frames here, got {x.shape[0]}")
    return np.stack([x[i * hop : i * hop + length] for i in range(n)])


# HTK mel scale: mel(f) = 1127 ln(1 + f / 700) (reference mel_features.hertz_to_mel).
def hertz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


# Triangular filters linear in mel between num_mel + 2 evenly spaced edges, over the rfft bins' frequencies
# linspace(0, sr / 2, bins); the DC bin gets weight 0 (reference mel_features.spectrogram_to_mel_matrix).
def mel_matrix(bins: int = FFT // 2 + 1, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(bins, 64) weights: mel = |STFT| @ W."""
    bin_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2, bins))[:, None]  # (bins, 1)
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), MEL_BINS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # (64,) each
    rising, falling = (bin_mel - lower) / (center - lower), (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0
    return weights


def log_mel_examples(wave: np.ndarray) -> np.ndarray:
    """A 16 kHz wave (S,) -> (n, 96, 64) log-mel examples."""
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames(wave, WINDOW, HOP) * hann, FFT))  # (T, 257)
    log_mel = np.log(magnitude @ mel_matrix() + LOG_OFFSET)  # (T, 64)
    return frames(log_mel, EXAMPLE_FRAMES, EXAMPLE_FRAMES)  # (T, 64) -> (n, 96, 64)


def vgg_features() -> nn.Sequential:
    """Conv3x3 + ReLU blocks 64, M, 128, M, 256, 256, M, 512, 512, M (indices as in the checkpoint)."""
    layers, cin = [], 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """(N, 96, 64) log-mel examples -> (N, 128) embeddings; `embed(wave)` for 16 kHz waves (B, S) -> (B, n, 128)."""

    def __init__(self):
        super().__init__()
        self.features = vgg_features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM),  # no final ReLU (av-benchmark / audioldm_eval)
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        x = self.features(examples[:, None])  # (N, 1, 96, 64) -> (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # (N, 6, 4, 512) -> (N, 12288): the TF model's channel-last order
        return self.embeddings(x)

    @torch.no_grad()
    def embed(self, waves: np.ndarray) -> torch.Tensor:
        examples = np.stack([log_mel_examples(w) for w in waves])  # (B, n, 96, 64)
        x = torch.from_numpy(examples).float().to(next(self.parameters()).device)
        return self(x.flatten(0, 1)).reshape(len(examples), examples.shape[1], -1)  # (B*n, 128) -> (B, n, 128)
