"""AudioCLIP's audio encoder (Guzhov et al. 2022, "AudioCLIP: Extending CLIP to Image, Text and Audio"): the
ESResNeXt-fbsp network whose 1024-d embedding MM-Diffusion and JavisBench read for their "FAD".

The layout is that of the `audio.` entries of the public checkpoint `AudioCLIP-Full-Training.pt` (AndreyGuzhov/
AudioCLIP release v0.1; `model/audioclip.py` builds `self.audio = ESResNeXtFBSP(n_fft=2048, hop_length=561,
win_length=1654, window="blackmanharris", normalized=True, onesided=True, spec_height=-1, spec_width=-1,
num_classes=1024, apply_attention=True)`), so that the audio sub-dict loads here with `strict=True`. The full
checkpoint also holds CLIP's image and text towers and the logit scales: only the `audio.` sub-dict is read
(`audio_state`), everything else is ignored.

- front end (`fbsp`, `window`): the signal in the int16 range is mapped linearly to [-1, 1] ((x + 32768) 2 / 65535
  - 1, the reference's `scale`); frames of 1654 samples every 561 (the signal zero-padded on both sides to a
  whole number of frames), times a periodic Blackman-Harris window, each zero-padded (197 left, 197 right) to
  2048; then the learnable "frequency B-spline" transform `LinearFBSP`: 1025 complex filters over the 2048
  samples, w_k(t) = sqrt(fb_k) |s_k(t)|^m_k e^{i m_k arg s_k(t)} e^{-i fc_k t} / sqrt(2048) with
  s_k(t) = sinc(fb_k t / (m_k + 1e-8)), t = pi linspace(-1, 1, 2048) + 1e-8 (parameters `fbsp.m`, `fbsp.fb`,
  `fbsp.fc`; `fbsp.bias` is the reference's empty placeholder, shape (0,)). The power |.|^2 of the lowest 1023
  bins, in three bands of 341 bins as the three input channels, 10 log10 (zeros replaced by 1e-18).
- body: ResNeXt-50 32x4d (`conv1` 7x7/2, `bn1`, max pool, `layer1`..`layer4` of 3, 4, 6, 3 bottlenecks) with
  the reference's attention gates `att1`..`att5` (adaptive max pool of the stage's input to its output size,
  depthwise conv, pointwise conv, BatchNorm, sigmoid, multiplied in), global average pooling, `fc` to 1024.

Sample rate: AudioCLIP's protocols read audio at 44.1 kHz (`protocols/audioclip-esc50.json`, `-us8k.json`);
MM-Diffusion evaluates at 44.1 kHz, JavisBench's script at its default 16 kHz. Amplitude: the network expects
int16-range values (its dataset loaders multiply librosa's [-1, 1] waves by 32768); MM-Diffusion and JavisBench
feed float waveforms in [-1, 1] unchanged (so the network sees about 1/32768 of its training amplitude), and so
does the metric here (`avgen.metrics.extractors.AudioClipAudio`). Inference only: the reference's gradient hooks
and its ttf-norm loss are training matters.
"""

from __future__ import annotations

import math

import scipy.signal
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 44100
EMBED_DIM = 1024
N_FFT, WIN_LENGTH, HOP = 2048, 1654, 561
WINDOW = "blackmanharris"
BINS = N_FFT // 2 + 1  # 1025 (onesided)
IN_CHANNELS = 3  # the spectrogram's bands as image channels
BAND = BINS // IN_CHANNELS  # 341 bins per band; the top 2 bins are dropped
LOG10_EPS = 1e-18
FBSP_EPS = 1e-8
INT16_MIN, INT16_MAX = -32768.0, 32767.0
LAYERS = (3, 4, 6, 3)  # ResNeXt-50
GROUPS, WIDTH_PER_GROUP = 32, 4
# (kernel, padding) of the attention gates att1..att5 (model/esresnet/base.py)
ATTENTION = (((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 5), (1, 2)))


def int16_to_unit(x: torch.Tensor) -> torch.Tensor:
    """The reference's input scaling: [-32768, 32767] linearly onto [-1, 1]."""
    return (x - INT16_MIN) * 2.0 / (INT16_MAX - INT16_MIN) - 1.0


def frames(signal: torch.Tensor, window: torch.Tensor, hop: int = HOP) -> torch.Tensor:
    """(N, S) -> (N, T, len(window)) windowed frames: as many hops as cover the signal (one frame if it is
    shorter than a frame), the signal centred in zeros to exactly that length (the odd zero on the right)."""
    length, size = signal.shape[-1], window.shape[0]
    count = 1 if length <= size else 1 + math.ceil((length - size) / hop)
    missing = max(0, (count - 1) * hop + size - length)
    padded = F.pad(signal, (missing // 2, missing - missing // 2))
    return padded.unfold(-1, size, hop)[..., :count, :] * window


class LinearFBSP(nn.Module):
    """The learnable time-frequency transform: `out_features` complex filters over the (zero-padded) frame,
    their power returned. Parameters named as the checkpoint's: `m`, `fb`, `fc` (out,), `bias` (empty)."""

    def __init__(self, out_features: int = BINS, normalized: bool = True):
        super().__init__()
        self.normalized = normalized
        self.m = nn.Parameter(torch.zeros(out_features))
        self.fb = nn.Parameter(torch.ones(out_features))
        self.fc = nn.Parameter(torch.arange(out_features, dtype=torch.float32))
        self.bias = nn.Parameter(torch.empty(0))  # the reference's Parameter(None) placeholder (bias=False)

    def filters(self, size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, imag), each (out, size)."""
        t = math.pi * torch.linspace(-1.0, 1.0, size, dtype=dtype, device=device)[None] + FBSP_EPS  # (1, size)
        m, fb, fc = (p[:, None].to(dtype) for p in (self.m, self.fb, self.fc))
        arg = fb * t / (m + FBSP_EPS)
        sinc = torch.where(arg == 0, torch.ones_like(arg), torch.sin(arg) / arg)
        # sinc ** m as a complex power: magnitude |sinc|^m, phase m * arg(sinc) (0 or m pi)
        magnitude = (sinc * sinc) ** (0.5 * m)
        phase = m * torch.atan2(torch.zeros_like(sinc), sinc)
        win_re, win_im = magnitude * torch.cos(phase), magnitude * torch.sin(phase)
        ker_re, ker_im = torch.cos(fc * t), -torch.sin(fc * t)
        gain = fb.sqrt() / (size**0.5 if self.normalized else 1.0)
        return gain * (win_re * ker_re - win_im * ker_im), gain * (win_re * ker_im + win_im * ker_re)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., size) real frames -> (..., out) power."""
        re, im = self.filters(x.shape[-1], x.dtype, x.device)
        return F.linear(x, re).square() + F.linear(x, im).square()


class AttentionGate(nn.Module):
    """The reference's Attention2d (one kernel): a sigmoid gate of a stage's input, sized to its output."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], padding: tuple[int, int]):
        super().__init__()
        self.conv_depth = nn.Conv2d(in_channels, in_channels, kernel, padding=padding, groups=in_channels)
        self.conv_point = nn.Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return torch.sigmoid(self.bn(self.conv_point(self.conv_depth(F.adaptive_max_pool2d(x, size)))))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, groups: int, width_per_group: int):
        super().__init__()
        width = int(planes * width_per_group / 64) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = None
        if stride != 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ESResNeXtFBSP(nn.Module):
    """Wave (B, S) or (B, C, S) in the int16 range convention at 44.1 kHz -> the 1024-d audio embedding (B, 1024)
    (AudioCLIP's `encode_audio`, before its L2 normalisation); channels are embedded separately and summed, as
    in the reference. `layers`, `groups` and `width_per_group` give reduced stand-ins for tests."""

    def __init__(
        self,
        layers: tuple[int, ...] = LAYERS,
        groups: int = GROUPS,
        width_per_group: int = WIDTH_PER_GROUP,
        embed_dim: int = EMBED_DIM,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(IN_CHANNELS, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inplanes, stage_in = 64, 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), 1):
            stride = 1 if i == 1 else 2
            stage = [Bottleneck(inplanes, planes, stride, groups, width_per_group)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes, 1, groups, width_per_group) for _ in range(1, blocks)]
            self.add_module(f"layer{i}", nn.Sequential(*stage))
            self.add_module(f"att{i}", AttentionGate(stage_in, inplanes, *ATTENTION[i - 1]))
            stage_in = inplanes
        self.att5 = AttentionGate(inplanes, inplanes, *ATTENTION[4])
        self.fc = nn.Linear(inplanes, embed_dim)
        self.fbsp = LinearFBSP(BINS, normalized=True)
        window = scipy.signal.get_window(WINDOW, WIN_LENGTH, fftbins=True)
        self.register_buffer("window", torch.from_numpy(window).float())  # in the checkpoint, as in the reference
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's initialisation (Kaiming normal convolutions, unit BatchNorm): stand-in weights."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> ESResNeXtFBSP:
        """An ESResNeXt-fbsp of the depths, grouping and embedding size a state dict has (the published one is
        ResNeXt-50 32x4d to 1024; reduced stand-ins for tests)."""
        layers = tuple(1 + max(int(k.split(".")[1]) for k in state if k.startswith(f"layer{i}.")) for i in range(1, 5))
        width, per_group = state["layer1.0.conv2.weight"].shape[:2]  # layer 1: width = groups * width_per_group
        groups = width // per_group
        return cls(layers, groups, width // groups, state["fc.weight"].shape[0])

    def log_power(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, C, S) -> (B, C, 3, 341, T): the dB spectrogram in three bands of the lowest 1023 bins."""
        b, length = wave.shape[0], wave.shape[-1]
        x = int16_to_unit(wave.to(self.window.dtype)).reshape(-1, length)
        with torch.no_grad():  # the framing holds no parameter
            f = frames(x, self.window)  # (N, T, 1654)
            pad = N_FFT - WIN_LENGTH
            f = F.pad(f, (pad // 2, pad - pad // 2))  # (N, T, 2048)
        power = self.fbsp(f).transpose(-1, -2)[:, : IN_CHANNELS * BAND]  # (N, T, 1025) -> (N, 1023, T)
        power = power.reshape(b, -1, IN_CHANNELS, BAND, power.shape[-1])
        power = torch.where(power > 0, power, torch.full_like(power, LOG10_EPS))
        return 10.0 * torch.log10(power)

    def embed_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 2048): the attention-gated ResNeXt, pooled."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        for i in range(1, 5):
            y = getattr(self, f"layer{i}")(x)
            x = y * getattr(self, f"att{i}")(x, y.shape[-2:])
        return (F.adaptive_avg_pool2d(x, 1) * self.att5(x, (1, 1))).flatten(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        db = self.log_power(wave)  # (B, C, 3, 341, T)
        pooled = torch.stack([self.embed_image(db[:, c]) for c in range(db.shape[1])], -1).sum(-1)
        return self.fc(pooled)


def audio_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The audio encoder's state dict: the `audio.` sub-dict of a full AudioCLIP checkpoint (its image and text
    towers and logit scales ignored), or a bare ESResNeXt-fbsp state dict as it is."""
    audio = {k[len("audio.") :]: v for k, v in checkpoint.items() if k.startswith("audio.")}
    return audio if audio else dict(checkpoint)
