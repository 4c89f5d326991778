"""A test-only transcription of AudioCLIP's audio encoder and of the FAD code MM-Diffusion and JavisBench run on
it, kept as close to them as runs: what `avgen.models.audioclip` and `fad_audioclip` are tested against.

- AndreyGuzhov/AudioCLIP `model/esresnet/fbsp.py` (`LinearFBSP`, `_ESResNetFBSP.spectrogram`), `base.py`
  (`Bottleneck`, `ResNetWithAttention`, `_ESResNet` pre-processing, features and reduction), `attention.py`
  (`Attention2d`), `utils/transforms.py` (`scale`, `frame_signal`), with `model/audioclip.py`'s audio settings;
  the copies vendored in researchmm/MM-Diffusion `evaluations/AudioCLIP/` and JavisDiT/JavisDiT
  `eval/javisbench/src/AudioCLIP/` are the same code. Changes: torchvision's `resnext50_32x4d` loader, the
  pretrained-loading branch, the gradient hooks, the losses and ignite's `AbstractNet` base dropped (nn.Module);
  widths as arguments (the published model is the default).
- MM-Diffusion `evaluations/fvd/fvd.py` (`cov`, `_symmetric_matrix_square_root`, `trace_sqrt_product`,
  `frechet_distance`; JavisBench `eval/javisbench/src/fvd/fvd.py` is the same file) and the `* 10000` of
  `mm_diffusion/evaluator.py` (`metric["fad"] = clip_fad.item() * 10000`) and JavisBench `src/metrics.py`.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import scipy.signal as sps
import torch
import torch.nn.functional as F


# utils/transforms.py
def scale(old_value, old_min, old_max, new_min, new_max):
    old_range = old_max - old_min
    new_range = new_max - new_min
    new_value = (((old_value - old_min) * new_range) / old_range) + new_min

    return new_value


def frame_signal(signal: torch.Tensor, frame_length: int, hop_length: int, window: torch.Tensor = None) -> torch.Tensor:
    if window is None:
        window = torch.ones(frame_length, dtype=signal.dtype, device=signal.device)

    if window.shape[0] != frame_length:
        raise ValueError(f"Wrong `window` length: expected {window.shape[0]}, got {frame_length}")

    signal_length = signal.shape[-1]

    if signal_length <= frame_length:
        num_frames = 1
    else:
        num_frames = 1 + int(math.ceil((1.0 * signal_length - frame_length) / hop_length))

    pad_len = int((num_frames - 1) * hop_length + frame_length)
    if pad_len > signal_length:
        zeros = torch.zeros(pad_len - signal_length, device=signal.device, dtype=signal.dtype)

        while zeros.dim() < signal.dim():
            zeros.unsqueeze_(0)

        pad_signal = torch.cat((zeros.expand(*signal.shape[:-1], -1)[..., : zeros.shape[-1] // 2], signal), dim=-1)
        pad_signal = torch.cat((pad_signal, zeros.expand(*signal.shape[:-1], -1)[..., zeros.shape[-1] // 2 :]), dim=-1)
    else:
        pad_signal = signal

    indices = torch.arange(0, frame_length, device=signal.device).repeat(num_frames, 1)
    indices += torch.arange(0, num_frames * hop_length, hop_length, device=signal.device).repeat(frame_length, 1).t_()
    indices = indices.long()

    frames = pad_signal[..., indices]
    frames = frames * window

    return frames


# model/esresnet/fbsp.py
class LinearFBSP(torch.nn.Module):
    def __init__(self, out_features: int, bias: bool = True, normalized: bool = False):
        super().__init__()

        self.out_features = out_features
        self.normalized = normalized
        self.eps = 1e-8

        default_dtype = torch.get_default_dtype()

        self.register_parameter("m", torch.nn.Parameter(torch.zeros(self.out_features, dtype=default_dtype)))
        self.register_parameter("fb", torch.nn.Parameter(torch.ones(self.out_features, dtype=default_dtype)))
        self.register_parameter("fc", torch.nn.Parameter(torch.arange(self.out_features, dtype=default_dtype)))
        self.register_parameter(
            "bias",
            torch.nn.Parameter(
                torch.normal(0.0, 0.5, (self.out_features, 2), dtype=default_dtype)
                if bias
                else cast(torch.nn.Parameter, None)
            ),
        )

    @staticmethod
    def power(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        magnitudes = (x1[..., 0] ** 2 + x1[..., 1] ** 2) ** 0.5
        phases = x1[..., 1].atan2(x1[..., 0])

        power_real = x2[..., 0]
        power_imag = x2[..., 1]

        mag_out = (magnitudes**2) ** (0.5 * power_real) * torch.exp(-power_imag * phases)

        return mag_out.unsqueeze(-1) * torch.stack(
            (
                (power_real * phases + 0.5 * power_imag * (magnitudes**2).log()).cos(),
                (power_real * phases + 0.5 * power_imag * (magnitudes**2).log()).sin(),
            ),
            dim=-1,
        )

    @staticmethod
    def sinc(x: torch.Tensor) -> torch.Tensor:
        return torch.where(cast(torch.Tensor, x == 0), torch.ones_like(x), torch.sin(x) / x)

    def _materialize_weights(self, x: torch.Tensor):
        x_is_complex = x.shape[-1] == 2
        in_features = x.shape[-1 - int(x_is_complex)]

        t = np.pi * torch.linspace(-1.0, 1.0, in_features, dtype=x.dtype, device=x.device).reshape(1, -1, 1) + self.eps

        m = self.m.reshape(-1, 1, 1)
        fb = self.fb.reshape(-1, 1, 1)
        fc = self.fc.reshape(-1, 1, 1)

        kernel = torch.cat((torch.cos(fc * t), -torch.sin(fc * t)), dim=-1)  # complex
        scale = fb.sqrt()  # real
        win = self.sinc(fb * t / (m + self.eps))  # real
        win = self.power(torch.cat((win, torch.zeros_like(win)), dim=-1), torch.cat((m, torch.zeros_like(m)), dim=-1))

        weights = scale * torch.cat(
            (
                win[..., :1] * kernel[..., :1] - win[..., 1:] * kernel[..., 1:],
                win[..., :1] * kernel[..., 1:] + win[..., 1:] * kernel[..., :1],
            ),
            dim=-1,
        )

        if self.normalized:
            weights = weights / (in_features**0.5)

        return weights, x_is_complex

    def forward(self, x: torch.Tensor):
        weights, x_is_complex = self._materialize_weights(x)

        if x_is_complex:
            x = torch.stack(
                (
                    F.linear(x[..., 0], weights[..., 0]) - F.linear(x[..., 1], weights[..., 1]),
                    F.linear(x[..., 0], weights[..., 1]) + F.linear(x[..., 1], weights[..., 0]),
                ),
                dim=-1,
            )
        else:
            x = torch.stack((F.linear(x, weights[..., 0]), F.linear(x, weights[..., 1])), dim=-1)

        if (self.bias is not None) and (self.bias.numel() == (self.out_features * 2)):
            x = x + self.bias

        return x, weights


# model/esresnet/attention.py
class Attention2d(torch.nn.Module):
    def __init__(self, in_channels, out_channels, num_kernels, kernel_size, padding_size):
        super().__init__()

        self.conv_depth = torch.nn.Conv2d(
            in_channels=in_channels,
            out_channels=in_channels * num_kernels,
            kernel_size=kernel_size,
            padding=padding_size,
            groups=in_channels,
        )
        self.conv_point = torch.nn.Conv2d(
            in_channels=in_channels * num_kernels, out_channels=out_channels, kernel_size=(1, 1)
        )
        self.bn = torch.nn.BatchNorm2d(num_features=out_channels)
        self.activation = torch.nn.Sigmoid()

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        x = F.adaptive_max_pool2d(x, size)
        x = self.conv_depth(x)
        x = self.conv_point(x)
        x = self.bn(x)
        x = self.activation(x)

        return x


# model/esresnet/base.py
def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return torch.nn.Conv2d(
        in_channels=in_planes,
        out_channels=out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes, out_planes, stride=1):
    return torch.nn.Conv2d(in_channels=in_planes, out_channels=out_planes, kernel_size=1, stride=stride, bias=False)


class Bottleneck(torch.nn.Module):
    expansion: int = 4

    def __init__(
        self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1, norm_layer=None
    ):
        super().__init__()

        if norm_layer is None:
            norm_layer = torch.nn.BatchNorm2d

        width = int(planes * (base_width / 64.0)) * groups

        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = torch.nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)

        out = self.conv3(out)
        out = self.bn3(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class ESResNeXtFBSP(torch.nn.Module):
    """ResNetWithAttention + _ESResNet + _ESResNetFBSP + ESResNeXtFBSP, with AudioCLIP's audio arguments."""

    def __init__(
        self,
        layers=(3, 4, 6, 3),
        groups=32,
        width_per_group=4,
        n_fft=2048,
        hop_length=561,
        win_length=1654,
        window="blackmanharris",
        normalized=True,
        onesided=True,
        spec_height=-1,
        spec_width=-1,
        num_classes=1024,
        apply_attention=True,
    ):
        super().__init__()
        block = Bottleneck
        norm_layer = torch.nn.BatchNorm2d
        self.apply_attention = apply_attention
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group

        self.conv1 = torch.nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = torch.nn.ReLU()
        self.maxpool = torch.nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.layer1 = self._make_layer(block, 64, layers[0])
        self.att1 = Attention2d(64, 64 * block.expansion, 1, (3, 1), (1, 0))
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.att2 = Attention2d(64 * block.expansion, 128 * block.expansion, 1, (1, 5), (0, 2))
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.att3 = Attention2d(128 * block.expansion, 256 * block.expansion, 1, (3, 1), (1, 0))
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.att4 = Attention2d(256 * block.expansion, 512 * block.expansion, 1, (1, 5), (0, 2))
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.att5 = Attention2d(512 * block.expansion, 512 * block.expansion, 1, (3, 5), (1, 2))
        self.fc = torch.nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                torch.nn.init.constant_(m.weight, 1)
                torch.nn.init.constant_(m.bias, 0)

        # _ESResNet
        self.num_classes = num_classes
        self.fc = torch.nn.Linear(in_features=self.fc.in_features, out_features=self.num_classes, bias=True)
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.normalized = normalized
        self.onesided = onesided
        self.spec_height = spec_height
        self.spec_width = spec_width
        # _ESResNetFBSP._inject_members
        self.add_module(
            "fbsp",
            LinearFBSP(
                out_features=int(round(self.n_fft / 2)) + 1 if self.onesided else self.n_fft,
                normalized=self.normalized,
                bias=False,
            ),
        )
        window_buffer: torch.Tensor = torch.from_numpy(sps.get_window(window=window, Nx=win_length, fftbins=True)).to(
            torch.get_default_dtype()
        )
        self.register_buffer("window", window_buffer)
        self.log10_eps = 1e-18

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation

        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = torch.nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride), norm_layer(planes * block.expansion)
            )

        layers = list()
        layers.append(
            block(
                self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation, norm_layer
            )
        )
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(
                block(
                    self.inplanes,
                    planes,
                    groups=self.groups,
                    base_width=self.base_width,
                    dilation=self.dilation,
                    norm_layer=norm_layer,
                )
            )

        return torch.nn.Sequential(*layers)

    # _ESResNetFBSP.spectrogram
    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            frames = frame_signal(
                signal=x.view(-1, x.shape[-1]),
                frame_length=self.win_length,
                hop_length=self.hop_length,
                window=self.window,
            )

            if self.n_fft > self.win_length:
                pad_length = self.n_fft - self.win_length
                pad_left = pad_length // 2
                pad_right = pad_length - pad_left
                frames = F.pad(frames, [pad_left, pad_right])

        spec, ttf_weights_ = self.fbsp(frames)

        spec = spec.transpose(-2, -3)

        return spec

    def split_spectrogram(self, spec: torch.Tensor, batch_size: int) -> torch.Tensor:
        spec_height_per_band = spec.shape[-3] // self.conv1.in_channels
        spec_height_single_band = self.conv1.in_channels * spec_height_per_band
        spec = spec[:, :spec_height_single_band]

        spec = spec.reshape(batch_size, -1, spec.shape[-3] // self.conv1.in_channels, *spec.shape[-2:])

        return spec

    def spectrogram_to_power(self, spec: torch.Tensor) -> torch.Tensor:
        spec_height = spec.shape[-3] if self.spec_height < 1 else self.spec_height
        spec_width = spec.shape[-2] if self.spec_width < 1 else self.spec_width

        pow_spec = spec[..., 0] ** 2 + spec[..., 1] ** 2

        if spec_height != pow_spec.shape[-2] or spec_width != pow_spec.shape[-1]:
            pow_spec = F.interpolate(pow_spec, size=(spec_height, spec_width), mode="bilinear", align_corners=True)

        return pow_spec

    # ResNetWithAttention._forward_pre_processing + _ESResNet._forward_pre_processing
    def _forward_pre_processing(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.get_default_dtype())
        x = scale(x, -32768.0, 32767, -1.0, 1.0)

        spec = self.spectrogram(x)
        spec_split_ch = self.split_spectrogram(spec, x.shape[0])
        pow_spec_split_ch = self.spectrogram_to_power(spec_split_ch)
        pow_spec_split_ch = torch.where(
            cast(torch.Tensor, pow_spec_split_ch > 0.0),
            pow_spec_split_ch,
            torch.full_like(pow_spec_split_ch, self.log10_eps),
        )
        pow_spec_split_ch = pow_spec_split_ch.reshape(
            x.shape[0], -1, self.conv1.in_channels, *pow_spec_split_ch.shape[-2:]
        )
        x_db = torch.log10(pow_spec_split_ch).mul(10.0)

        return x_db

    def _forward_pre_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        return x

    # ResNetWithAttention._forward_features (apply_attention=True)
    def _resnet_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._forward_pre_features(x)

        x_att = x.clone()
        x = self.layer1(x)
        x_att = self.att1(x_att, x.shape[-2:])
        x = x * x_att

        x_att = x.clone()
        x = self.layer2(x)
        x_att = self.att2(x_att, x.shape[-2:])
        x = x * x_att

        x_att = x.clone()
        x = self.layer3(x)
        x_att = self.att3(x_att, x.shape[-2:])
        x = x * x_att

        x_att = x.clone()
        x = self.layer4(x)
        x_att = self.att4(x_att, x.shape[-2:])
        x = x * x_att

        return x

    # ResNetWithAttention._forward_reduction (apply_attention=True)
    def _resnet_reduction(self, x: torch.Tensor) -> torch.Tensor:
        x_att = x.clone()
        x = self.avgpool(x)
        x_att = self.att5(x_att, x.shape[-2:])
        x = x * x_att

        x = torch.flatten(x, 1)

        return x

    # _ESResNet._forward_features / _forward_reduction: per channel, summed
    def _forward_features(self, x_db: torch.Tensor):
        outputs = list()
        for ch_idx in range(x_db.shape[1]):
            ch = x_db[:, ch_idx]
            out = self._resnet_features(ch)
            outputs.append(out)

        return outputs

    def _forward_reduction(self, x) -> torch.Tensor:
        outputs = list()
        for ch in x:
            out = self._resnet_reduction(ch)
            outputs.append(out)
        outputs = torch.stack(outputs, dim=-1).sum(dim=-1)

        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._forward_pre_processing(x)
        x = self._forward_features(x)
        x = self._forward_reduction(x)
        y_pred = self.fc(x)

        return y_pred


# MM-Diffusion evaluations/fvd/fvd.py (= JavisBench src/fvd/fvd.py)
def _symmetric_matrix_square_root(mat, eps=1e-10):
    u, s, v = torch.svd(mat)
    si = torch.where(s < eps, s, torch.sqrt(s))
    return torch.matmul(torch.matmul(u, torch.diag(si)), v.t())


def trace_sqrt_product(sigma, sigma_v):
    sqrt_sigma = _symmetric_matrix_square_root(sigma)
    sqrt_a_sigmav_a = torch.matmul(sqrt_sigma, torch.matmul(sigma_v, sqrt_sigma))
    return torch.trace(_symmetric_matrix_square_root(sqrt_a_sigmav_a))


def cov(m, rowvar=False):
    if m.dim() > 2:
        raise ValueError("m has more than 2 dimensions")
    if m.dim() < 2:
        m = m.view(1, -1)
    if not rowvar and m.size(0) != 1:
        m = m.t()

    fact = 1.0 / (m.size(1) - 1)  # unbiased estimate
    m -= torch.mean(m, dim=1, keepdim=True)
    mt = m.t()  # if complex: mt = m.t().conj()
    return fact * m.matmul(mt).squeeze()


def frechet_distance(x1, x2):
    x1 = x1.flatten(start_dim=1)
    x2 = x2.flatten(start_dim=1)
    m, m_w = x1.mean(dim=0), x2.mean(dim=0)
    sigma, sigma_w = cov(x1, rowvar=False), cov(x2, rowvar=False)

    sqrt_trace_component = trace_sqrt_product(sigma, sigma_w)
    trace = torch.trace(sigma + sigma_w) - 2.0 * sqrt_trace_component

    mean = torch.sum((m - m_w) ** 2)
    fd = trace + mean
    return fd


def reported_fad(fake_audio_embeddings: torch.Tensor, real_audio_embeddings: torch.Tensor) -> float:
    """mm_diffusion/evaluator.py: `frechet_distance(fake, real)` of the AudioCLIP audio embeddings, `* 10000`."""
    clip_fad = frechet_distance(fake_audio_embeddings.clone().detach(), real_audio_embeddings.clone().detach())
    return clip_fad.item() * 10000
