"""Dual U-Net: shapes, variable length, couplings really couple (and `none` does not), paper size."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from avgen.config import load_config
from avgen.models.unets.couplings import RandomShiftCrossAttention
from avgen.models.unets.dual_unet import DualUNet, parameter_count

TINY = dict(
    video_channels=3,
    audio_channels=16,
    base_channels=16,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_levels=(1,),
    head_dim=16,
)


def _inputs(b=2, f=6, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(b, f, 3, 8, 8, generator=g), "audio": torch.randn(b, 16, t, generator=g)}


def _randomise(net):
    """Zero-initialised output layers make a fresh net's outputs constant; perturb every weight."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net


@pytest.mark.parametrize("coupling", ["easy_fusion", "rs_mma", "none"])
def test_shapes_and_double_length(coupling):
    net = DualUNet(coupling=coupling, **TINY)
    for f, t in [(6, 12), (12, 24)]:  # train length and twice that
        x = _inputs(f=f, t=t)
        out = net(x, torch.tensor([1, 900]))
        assert {m: o.shape for m, o in out.items()} == {m: v.shape for m, v in x.items()}


@pytest.mark.parametrize("coupling,mixes", [("easy_fusion", True), ("rs_mma", True), ("none", False)])
def test_audio_output_depends_on_video_only_when_coupled(coupling, mixes):
    net = _randomise(DualUNet(coupling=coupling, **TINY)).eval()
    x, t = _inputs(), torch.tensor([100, 500])
    x2 = {"audio": x["audio"], "video": x["video"] + torch.randn_like(x["video"])}
    torch.manual_seed(0)
    a1 = net(x, t)["audio"]
    torch.manual_seed(0)  # same RS-MMA shift
    a2 = net(x2, t)["audio"]
    changed = (a1 - a2).abs().max().item() > 1e-4
    assert changed == mixes
    v1 = net(x, t)["video"]
    v2 = net({"audio": x["audio"] * -1.0, "video": x["video"]}, t)["video"]
    assert ((v1 - v2).abs().max().item() > 1e-4) == mixes


def test_single_branch_model_and_bad_couplings():
    net = DualUNet(modalities=("audio",), coupling="none", **TINY)
    out = net({"audio": _inputs()["audio"]}, torch.tensor([3, 4]))
    assert set(out) == {"audio"} and "video" not in net.branches
    with pytest.raises(ValueError, match="both modalities"):
        DualUNet(modalities=("video",), coupling="easy_fusion", **TINY)
    with pytest.raises(ValueError, match="coupling"):
        DualUNet(coupling="cross", **TINY)


def test_two_d_audio_latents_fold_into_channels():
    net = DualUNet(**{**TINY, "audio_channels": 4 * 8})
    x = {"video": _inputs()["video"], "audio": torch.randn(2, 4, 12, 8)}
    assert net(x, torch.tensor([1, 2]))["audio"].shape == (2, 4, 12, 8)


def test_bad_shapes_are_named():
    net = DualUNet(**TINY)
    with pytest.raises(ValueError, match="multiple of 2"):
        net({"video": _inputs()["video"], "audio": torch.randn(2, 16, 13)}, torch.tensor([1, 2]))
    with pytest.raises(KeyError, match="video"):
        net({"audio": torch.randn(2, 16, 12)}, torch.tensor([1, 2]))


def test_rs_mma_window_follows_the_shift():
    """Video frame i attends only to audio of frame (i + shift) mod F."""
    attn = RandomShiftCrossAttention(16, 16, head_dim=16, window_frames=1)
    torch.nn.init.eye_(attn.v_out.weight)  # open the zero-initialised output
    f, t = 4, 8
    video = torch.zeros(1, 16, f, 2, 2)
    audio = torch.zeros(1, 16, t)
    audio[..., 2:4] = torch.randn(16, 1)  # audio frame 1 (steps 2, 3) differs from the rest
    out_v, _ = attn(video, audio, shift=1)
    delta = (out_v - video).abs().amax(dim=(0, 1, 3, 4))  # per video frame
    # frame 0 sees audio frame 1 (the odd one); frames 1..3 see uniform audio of their windows
    assert torch.allclose(delta[1:], delta[1:].mean().expand(3), atol=1e-6)
    assert (delta[0] - delta[1]).abs() > 1e-3


def test_paper_config_has_about_106m_parameters():
    net = DualUNet(
        video_channels=4,
        audio_channels=80,
        base_channels=128,
        channel_mult=(1, 2, 3, 4),
        num_res_blocks=1,
        attention_levels=(1, 2, 3),
        head_dim=64,
        coupling="easy_fusion",
    )
    assert abs(parameter_count(net) - 106e6) / 106e6 < 0.10


def test_in_domain_discriminator_has_about_12_7m_parameters():
    """MMDisCo paper A.3: the in-domain discriminator (channels 128, mult 1,2,4, 2 blocks) has 12.7M."""
    cfg = load_config("train", ["model=discriminator_paper", "name=p"]).model
    net = instantiate(cfg)
    assert abs(parameter_count(net) - 12.7e6) / 12.7e6 < 0.03
