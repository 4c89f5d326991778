"""The video convolutions run as 2-D ones (blocks.FrameConv / TimeConv): same parameters, same results."""

from __future__ import annotations

import torch
from hydra.utils import instantiate

import avgen.models.unets.blocks as blocks
from avgen.config import load_config


def test_factorised_convs_equal_conv3d():
    torch.manual_seed(0)
    for conv in (blocks.spatial_conv(3, 5), blocks.spatial_conv(3, 5, stride=2), blocks.temporal_conv(3, 5)):
        x = torch.randn(2, 3, 4, 6, 6)
        expected = torch.nn.functional.conv3d(x, conv.weight, conv.bias, conv.stride, conv.padding)
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-6)
        assert isinstance(conv, torch.nn.Conv3d) and conv.weight.ndim == 5  # checkpoint layout unchanged


def test_dual_unet_outputs_and_state_dict_unchanged(monkeypatch):
    cfg = load_config("train", ["name=x"]).model
    torch.manual_seed(0)
    net = instantiate(cfg, video_channels=3, audio_channels=16).eval()
    for p in net.parameters():  # the zero-initialised output convs would hide a difference
        torch.nn.init.normal_(p, std=0.05)
    x = {"video": torch.randn(2, 12, 3, 16, 16), "audio": torch.randn(2, 16, 24)}
    t = torch.tensor([10, 900])
    with torch.no_grad():
        factorised = net(x, t)
        monkeypatch.setattr(blocks, "FACTORISED_CONVS", False)
        reference = net(x, t)
    for m in x:
        torch.testing.assert_close(factorised[m], reference[m], rtol=1e-4, atol=1e-5)
    assert all(v.ndim == 5 for k, v in net.state_dict().items() if "video" in k and k.endswith("conv1.weight"))
