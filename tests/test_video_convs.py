"""The video convolutions run as 2-D ones (blocks.FrameConv / TimeConv): same parameters, same results."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

import avgen.models.unets.blocks as blocks
from avgen.config import load_config


def test_factorised_convs_equal_conv3d(monkeypatch):
    monkeypatch.setattr(blocks, "FACTORISED_CONVS", True)
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
        monkeypatch.setattr(blocks, "FACTORISED_CONVS", True)
        factorised = net(x, t)
        monkeypatch.setattr(blocks, "FACTORISED_CONVS", False)
        reference = net(x, t)
    for m in x:
        torch.testing.assert_close(factorised[m], reference[m], rtol=1e-4, atol=1e-5)
    assert all(v.ndim == 5 for k, v in net.state_dict().items() if "video" in k and k.endswith("conv1.weight"))


def test_auto_layout_is_per_frame_on_cuda_only(monkeypatch):
    monkeypatch.setattr(blocks, "FACTORISED_CONVS", None)
    assert not blocks.use_frame_convs(torch.zeros(1))  # CPU: Conv3d (faster there, make bench conv_layout_*)
    if torch.cuda.is_available():
        assert blocks.use_frame_convs(torch.zeros(1, device="cuda"))
    monkeypatch.setattr(blocks, "FACTORISED_CONVS", True)
    assert blocks.use_frame_convs(torch.zeros(1))


@pytest.mark.slow  # whole-CLI run, subprocess or compile: the slow tier
def test_bench_times_before_and_after_and_writes_their_profiles(synthetic_store, tmp_path):
    from avgen.bench.before_after import bench_before_after

    cfg = load_config(
        "bench",
        [
            f"out={tmp_path / 'results.json'}",
            f"data.store={synthetic_store}",
            "unet_model=dual_unet_tiny",
            "unet_repeats=2",
            "layout_steps=2",
        ],
    )
    results = bench_before_after(cfg)
    for figure in ("before_after_default", "conv_layout_unet", "conv_layout_default", "adam_fused"):
        assert results[f"{figure}_speedup"] > 0 and results[f"{figure}_speedup_spread"] >= 0
    for step in (
        "before_after_default_step_ms_before",
        "before_after_default_step_ms_after",
        "conv_layout_default_step_ms_conv3d",
        "conv_layout_default_step_ms_frame_convs",
    ):
        assert results[step] > 0
    assert blocks.FACTORISED_CONVS is None  # the bench leaves the layout as it found it
    tables = {label: (tmp_path / f"profile_default_{label}.txt").read_text() for label in ("before", "after")}
    assert "aten::conv3d" in tables["before"] and "Optimizer.step#Adam.step" in tables["after"]
