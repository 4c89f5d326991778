"""Inflated Inception-v1 (I3D, Carreira & Zisserman 2017): the video feature network of FVD / KVD (docs/metrics.md).

The layer names follow the widely shared PyTorch port of the Kinetics-400 weights (`Conv3d_1a_7x7.conv3d.weight`,
`Mixed_3b.b1b.bn.running_mean`, `logits.conv3d.bias`, ...), so such a state dict loads with `load_state_dict`.
`width` scales every channel count: the tests build a tiny stand-in with the same topology. Padding is
TensorFlow's "SAME" (computed from the input size), as in the original release, so features match it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Inception branch widths per mixed block: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | pool -> 1x1 (I3D paper, Fig. 3)
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TensorFlow "SAME" padding as F.pad's (last dim first) list for a (T, H, W) input."""
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride))):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [total // 2, total - total // 2]
    return pads


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> BatchNorm -> ReLU; the logits layer has a bias and neither norm nor ReLU."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), norm_act: bool = True):
        super().__init__()
        self.kernel, self.stride, self.norm_act = tuple(kernel), tuple(stride), norm_act
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=not norm_act)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if norm_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)))
        return F.relu(self.bn(x)) if self.norm_act else x


class SamePool3d(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # zero padding is exact here: inputs come out of a ReLU
        return F.max_pool3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)), self.kernel, self.stride)


class Mixed(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, ...]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(cin, w0)
        self.b1a, self.b1b = Unit3D(cin, w1a), Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, w2a), Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a, self.b3b = SamePool3d((3, 3, 3), (1, 1, 1)), Unit3D(cin, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class InceptionI3d(nn.Module):
    """(B, 3, T, H, W) RGB in [-1, 1] -> (B, num_classes) logits averaged over time (the FVD features)."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        c = lambda n: max(1, int(round(n * width)))  # noqa: E731
        layers: list[tuple[str, nn.Module]] = [
            ("Conv3d_1a_7x7", Unit3D(in_channels, c(64), (7, 7, 7), (2, 2, 2))),
            ("MaxPool3d_2a_3x3", SamePool3d((1, 3, 3), (1, 2, 2))),
            ("Conv3d_2b_1x1", Unit3D(c(64), c(64))),
            ("Conv3d_2c_3x3", Unit3D(c(64), c(192), (3, 3, 3))),
            ("MaxPool3d_3a_3x3", SamePool3d((1, 3, 3), (1, 2, 2))),
        ]
        cin = c(192)
        pools = {"Mixed_4b": ((3, 3, 3), (2, 2, 2)), "Mixed_5b": ((2, 2, 2), (2, 2, 2))}
        for name, widths in MIXED.items():
            if name in pools:
                layers.append(
                    (f"MaxPool3d_{name[-2:-1]}a_{pools[name][0][0]}x{pools[name][0][0]}", SamePool3d(*pools[name]))
                )
            block = Mixed(cin, tuple(c(w) for w in widths))
            layers.append((name, block))
            cin = block.out_channels
        self.names = [n for n, _ in layers]
        for name, layer in layers:
            self.add_module(name, layer)
        self.logits = Unit3D(cin, num_classes, norm_act=False)
        self.feature_dim = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.names:
            x = getattr(self, name)(x)
        # the release pools a (2, 7, 7) window at 224 px and 16 frames; a global spatial mean equals it there
        # and keeps other input sizes usable
        x = F.avg_pool3d(x, (min(2, x.shape[2]), x.shape[3], x.shape[4]), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))  # (B, classes, T', 1, 1) -> (B, classes)
