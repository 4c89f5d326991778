"""PANNs Cnn14 (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks"), the AudioSet tagging
CNN whose 2048-d embedding and 527 class outputs av-benchmark's FD-PANNs, KL-PANNs and IS-PANNs read.

The layout is that of the public checkpoints' `model` state dicts (qiuqiangkong/audioset_tagging_cnn
`pytorch/models.py` Cnn14, as vendored in av-benchmark `av_bench/panns/models.py`), so that they load with
`strict=True`: the torchlibrosa front end's STFT kernels (`spectrogram_extractor.stft.conv_{real,imag}.weight`)
and mel filter bank (`logmel_extractor.melW`) are parameters of the checkpoint too. Two published front ends:

- 16 kHz (`Cnn14_16k_mAP=0.438.pth`, what av-benchmark loads): STFT window 512, hop 160, mel 50-8000 Hz;
- 32 kHz (`Cnn14_mAP=0.431.pth`, the paper's model): STFT window 1024, hop 320, mel 50-14000 Hz;

both 64 mel bins, Hann window, centred frames with reflect padding, power spectrogram, power to dB with
ref 1.0, amin 1e-10 and no top_db (torchlibrosa `LogmelFilterBank`). Inference only: the reference's
SpecAugment and mixup act in training and hold no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 527  # AudioSet
MEL_BINS = 64
EMBEDDING_DIM = 2048


@dataclass(frozen=True)
class FrontEnd:
    sample_rate: int
    window: int  # STFT size = window length
    hop: int
    fmin: float
    fmax: float


# the two published checkpoints' front ends (audioset_tagging_cnn README and scripts; av-benchmark extraction_models.py)
FRONT_ENDS = {
    16000: FrontEnd(16000, 512, 160, 50.0, 8000.0),
    32000: FrontEnd(32000, 1024, 320, 50.0, 14000.0),
}


def front_end_for(sample_rate: int) -> FrontEnd:
    if sample_rate not in FRONT_ENDS:
        raise ValueError(f"PANNs Cnn14 is published at {sorted(FRONT_ENDS)} Hz, not {sample_rate}")
    return FRONT_ENDS[sample_rate]


# torchlibrosa STFT as two Conv1d: kernel[k, t] = w[t] exp(-2 pi i k t / n) for the n // 2 + 1 non-negative
# frequencies k, with w the periodic Hann window (librosa.filters.get_window(..., fftbins=True)).
def stft_kernels(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, imag) kernels, each (n_fft // 2 + 1, 1, n_fft)."""
    window = librosa.filters.get_window("hann", n_fft, fftbins=True)
    angle = -2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), np.arange(n_fft)) / n_fft  # (F, n_fft)
    real, imag = np.cos(angle) * window, np.sin(angle) * window
    return tuple(torch.tensor(k, dtype=torch.float32)[:, None, :] for k in (real, imag))


class StftConv(nn.Module):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        real, imag = stft_kernels(n_fft)
        self.conv_real.weight.data.copy_(real)
        self.conv_imag.weight.data.copy_(imag)
        self.requires_grad_(False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) -> real and imaginary parts (B, F, T) of centred frames (reflect padding n_fft // 2)."""
        x = F.pad(wave[:, None], (self.n_fft // 2, self.n_fft // 2), mode="reflect")  # (B, 1, S + n_fft)
        return self.conv_real(x), self.conv_imag(x)


class PowerSpectrogram(nn.Module):
    """torchlibrosa `Spectrogram` (power 2): (B, S) -> (B, 1, T, F)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.stft = StftConv(n_fft, hop)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(wave)
        return (real.square() + imag.square()).transpose(1, 2)[:, None]  # (B, F, T) -> (B, 1, T, F)


class LogMelFilterBank(nn.Module):
    """torchlibrosa `LogmelFilterBank`: librosa's Slaney mel filters, then power to dB."""

    def __init__(self, front: FrontEnd, n_mels: int = MEL_BINS, amin: float = 1e-10, ref: float = 1.0):
        super().__init__()
        mel = librosa.filters.mel(
            sr=front.sample_rate, n_fft=front.window, n_mels=n_mels, fmin=front.fmin, fmax=front.fmax
        )
        self.melW = nn.Parameter(torch.tensor(mel.T, dtype=torch.float32), requires_grad=False)  # (F, n_mels)
        self.amin, self.ref = amin, ref

    # power to dB (librosa.power_to_db without top_db): 10 log10(max(x, amin)) - 10 log10(max(amin, ref))
    def forward(self, power: torch.Tensor) -> torch.Tensor:
        mel = power @ self.melW  # (B, 1, T, F) -> (B, 1, T, n_mels)
        return 10.0 * torch.log10(mel.clamp(min=self.amin)) - 10.0 * np.log10(max(self.amin, self.ref))


class ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias) with batch norm and ReLU, then average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: int = 2) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, pool)


class Cnn14(nn.Module):
    """Wave (B, S) at `front.sample_rate` -> {"embedding": (B, 2048), "logits": (B, 527), "probabilities": (B, 527)}:
    the reference's `"2048"` (ReLU of fc1), `"logits"` and `"clipwise_output"` (their sigmoid)."""

    def __init__(self, sample_rate: int = 16000, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.front = front_end_for(sample_rate)
        self.spectrogram_extractor = PowerSpectrogram(self.front.window, self.front.hop)
        self.logmel_extractor = LogMelFilterBank(self.front)
        self.bn0 = nn.BatchNorm2d(MEL_BINS)
        widths = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM)
        self.fc_audioset = nn.Linear(EMBEDDING_DIM, num_classes)

    @property
    def sample_rate(self) -> int:
        return self.front.sample_rate

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.logmel_extractor(self.spectrogram_extractor(wave))  # (B, 1, T, 64)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # batch norm over the mel bins
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)  # (B, C, T', M')
        x = x.mean(3)  # (B, 2048, T'): mean over frequency
        x = x.amax(2) + x.mean(2)  # (B, 2048): max + mean over time
        embedding = F.relu(self.fc1(x))
        logits = self.fc_audioset(embedding)
        return {"embedding": embedding, "logits": logits, "probabilities": torch.sigmoid(logits)}


def checkpoint_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The state dict of a published checkpoint ({"model": ..., "iteration": ...}) or of a bare state dict."""
    return checkpoint["model"] if "model" in checkpoint else checkpoint


def rate_of_state(state: dict[str, torch.Tensor]) -> int:
    """The sample rate a Cnn14 state dict was trained at, from the size of its STFT (n_fft // 2 + 1 bins)."""
    bins = state["logmel_extractor.melW"].shape[0]
    rates = {f.window // 2 + 1: r for r, f in FRONT_ENDS.items()}
    if bins not in rates:
        raise ValueError(f"a Cnn14 mel filter bank over {bins} STFT bins matches no published front end")
    return rates[bins]
