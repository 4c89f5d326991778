"""MelGAN (Kumar et al. 2019): mel -> waveform generator and multi-scale waveform discriminator.

Generator: a 7-tap input conv, then per upsampling ratio a transposed conv (x ratio in time, channels halved)
and a residual stack with dilations 1, 3, 9; a 7-tap output conv and tanh (§2.1). The ratios multiply to the
mel hop length. Discriminator: three identical discriminators on the waveform at 1x, 2x and 4x average-pooled
rates (§2.2), each strided grouped convs returning every layer's feature map (for feature matching) and the
final score map. All convs are weight-normalised. `LogMel` computes the store's normalised log-mel
(`avgen.data.representations.AudioLogMel`) in torch, so the vocoder learns to invert exactly what the
diffusion models generate.
"""

from __future__ import annotations

import math

import librosa
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def wn_conv(*args, **kwargs) -> nn.Module:
    return weight_norm(nn.Conv1d(*args, **kwargs))


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(dilation),
            wn_conv(channels, channels, 3, dilation=dilation),
            nn.LeakyReLU(0.2),
            wn_conv(channels, channels, 1),
        )
        self.shortcut = wn_conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class MelGANGenerator(nn.Module):
    """(B, n_mels, T) normalised log-mel -> (B, 1, T * prod(ratios)) waveform in [-1, 1]."""

    def __init__(self, n_mels: int, ratios: list[int], channels: int = 32, residual_layers: int = 3):
        super().__init__()
        self.hop_length = math.prod(ratios)
        width = channels * 2 ** len(ratios)
        layers: list[nn.Module] = [nn.ReflectionPad1d(3), wn_conv(n_mels, width, 7)]
        for r in ratios:
            layers += [
                nn.LeakyReLU(0.2),
                weight_norm(
                    nn.ConvTranspose1d(width, width // 2, 2 * r, r, padding=r // 2 + r % 2, output_padding=r % 2)
                ),
            ]
            width //= 2
            layers += [ResidualUnit(width, 3**j) for j in range(residual_layers)]
        layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3), wn_conv(width, 1, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel)


class ScaleDiscriminator(nn.Module):
    def __init__(self, channels: int = 16, layers: int = 4, max_channels: int = 1024, stride: int = 4):
        super().__init__()
        blocks = [nn.Sequential(nn.ReflectionPad1d(7), wn_conv(1, channels, 15), nn.LeakyReLU(0.2))]
        c = channels
        for _ in range(layers):
            c_next = min(c * stride, max_channels)
            blocks.append(
                nn.Sequential(
                    wn_conv(c, c_next, stride * 10 + 1, stride, padding=stride * 5, groups=max(1, c // 4)),
                    nn.LeakyReLU(0.2),
                )
            )
            c = c_next
        blocks.append(nn.Sequential(wn_conv(c, min(c * 2, max_channels), 5, padding=2), nn.LeakyReLU(0.2)))
        blocks.append(wn_conv(min(c * 2, max_channels), 1, 3, padding=1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output; the last one is the (B, 1, T') score map."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, scales: int = 3, channels: int = 16, layers: int = 4, max_channels: int = 1024):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(channels, layers, max_channels) for _ in range(scales))
        self.pool = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)

    def forward(self, wav: torch.Tensor) -> list[list[torch.Tensor]]:
        """(B, 1, S) -> per scale, the feature maps (last = score)."""
        outs = []
        for i, d in enumerate(self.discriminators):
            outs.append(d(wav))
            if i + 1 < len(self.discriminators):
                wav = self.pool(wav)
        return outs


class LogMel(nn.Module):
    """Waveform (B, S) -> normalised log-mel (B, n_mels, S // hop + 1), as `AudioLogMel` computes it (librosa's
    Slaney mel filters, centred zero-padded frames, power 2, fixed dB range mapped to [-1, 1])."""

    def __init__(
        self,
        sample_rate: int,
        n_mels: int,
        n_fft: int,
        hop_length: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        min_db: float = -80.0,
        max_db: float = 20.0,
    ):
        super().__init__()
        self.n_fft, self.hop_length, self.min_db, self.max_db = n_fft, hop_length, min_db, max_db
        self.params = dict(
            sample_rate=sample_rate,
            n_mels=n_mels,
            n_fft=n_fft,
            hop_length=hop_length,
            fmin=fmin,
            fmax=fmax if fmax is not None else sample_rate / 2,
            min_db=min_db,
            max_db=max_db,
        )
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=self.params["fmax"])
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = (
            torch.stft(
                wav.float(),
                self.n_fft,
                self.hop_length,
                window=self.window,
                center=True,
                pad_mode="constant",
                return_complex=True,
            )
            .abs()
            .square()
        )  # (B, n_fft//2+1, frames)
        db = 10 * torch.log10((self.filters @ spec).clamp(min=10 ** (self.min_db / 10)))
        return 2 * (db.clamp(self.min_db, self.max_db) - self.min_db) / (self.max_db - self.min_db) - 1


class MelGAN(nn.Module):
    """The vocoder's parts, built from one config: generator, discriminator and the mel they share."""

    def __init__(
        self,
        mel: dict,
        ratios: list[int],
        channels: int = 32,
        residual_layers: int = 3,
        disc_scales: int = 3,
        disc_channels: int = 16,
        disc_layers: int = 4,
        disc_max_channels: int = 1024,
    ):
        super().__init__()
        if math.prod(ratios) != mel["hop_length"]:
            raise ValueError(
                f"model.ratios {list(ratios)} multiply to {math.prod(ratios)}, but the mel hop_length "
                f"is {mel['hop_length']}: the generator must upsample one mel frame to one hop"
            )
        self.mel = LogMel(**mel)
        self.generator = MelGANGenerator(mel["n_mels"], list(ratios), channels, residual_layers)
        self.discriminator = MultiScaleDiscriminator(disc_scales, disc_channels, disc_layers, disc_max_channels)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel)

    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, (T - 1) * hop): the samples the mel frames cover (centred framing)."""
        return self.generator(mel)[:, 0, : (mel.shape[-1] - 1) * self.generator.hop_length]


def pad_to_frames(wav: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Crop (B, S) to a whole number of hops, so that mel frames and waveform samples line up."""
    return wav[..., : wav.shape[-1] // hop_length * hop_length]
