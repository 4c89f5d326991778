"""The memory table's parts: activation checkpointing changes nothing but memory, the meta-device count of
saved activations equals the count on real tensors, and the ~1B preset's table adds up."""

from __future__ import annotations

import pytest
import torch

from avgen.bench.memory import clip_shapes_of, memory_table, saved_bytes
from avgen.models.transformers.dual_dit import DualStreamDiT


def _tiny(**kw):
    torch.manual_seed(0)
    return DualStreamDiT(video_channels=3, audio_channels=8, width=32, depth=3, heads=2, **kw)


def _inputs(device="cpu"):
    g = torch.Generator().manual_seed(1)
    return {"video": torch.randn(2, 4, 3, 8, 8, generator=g), "audio": torch.randn(2, 8, 12, generator=g)}


def _tiny_unet(**kw):
    from avgen.models.unets.dual_unet import DualUNet

    torch.manual_seed(0)
    net = DualUNet(video_channels=3, audio_channels=8, base_channels=8, channel_mult=(1, 2), head_dim=8, **kw)
    for p in net.parameters():  # outputs that depend on the inputs (zero-initialised heads do not)
        torch.nn.init.normal_(p, std=0.05)
    return net


@pytest.mark.parametrize("make", [_tiny, _tiny_unet], ids=["dual_dit", "dual_unet"])
def test_checkpointing_gives_the_same_outputs_and_gradients(make):
    plain, ckpt = make(), make(checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x, t = _inputs(), torch.tensor([10.0, 700.0])
    grads = []
    for net in (plain, ckpt):
        out = net(x, t)
        sum(v.square().sum() for v in out.values()).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    # it saves less for the backward: the blocks' internals are recomputed
    assert saved_bytes(lambda: ckpt(x, t)) < saved_bytes(lambda: plain(x, t))


def test_the_meta_count_of_saved_activations_is_near_the_real_one():
    """On real tensors attention runs a fused kernel; the meta device takes the math path (its N x N matrices
    left out of the count), which saves other intermediates: the two counts agree within 10%."""
    net, x, t = _tiny(), _inputs(), torch.tensor([10.0, 700.0])
    weights = {tuple(p.shape) for p in net.parameters()}
    real = saved_bytes(lambda: net(x, t), weights)
    with torch.device("meta"):
        meta_net = _tiny()
    meta_x = {m: v.to("meta") for m, v in x.items()}
    meta = saved_bytes(lambda: meta_net(meta_x, t.to("meta")), weights)
    assert abs(meta - real) <= 0.1 * real


def test_the_1b_preset_memory_table():
    assert clip_shapes_of("cmmd") == {"video": (18, 4, 16, 16), "audio": (80, 112)}  # the paper's clips
    text, facts = memory_table("dual_dit_xl", "cmmd", gpus=8, batch=8)
    assert 0.95e9 < facts["parameters"] < 1.1e9
    acts = facts["activations"]
    assert 0 < acts["checkpointed"] < acts["plain"] / 3
    assert "| DDP | off |" in text and "| FSDP x8 | on |" in text


def test_the_plans_training_flops_are_what_a_run_counts(synthetic_store, tmp_path):
    """`make plan`'s FLOPs per sample (meta device) equal the FLOP callback's count in a real run."""
    import json

    from avgen.bench.plan import plan
    from avgen.cli.main import main
    from avgen.suite import smoke_overrides
    from tests.test_method_contract import workspace

    overrides = (*smoke_overrides("ncmmd_synthetic"), *workspace(tmp_path, synthetic_store))
    assert main(["train", "experiment=ncmmd_synthetic", *overrides, "callbacks.flops.every_n_steps=1"]) == 0
    measured = json.loads((tmp_path / "outputs" / "ncmmd_synthetic" / "metrics.json").read_text())
    planned = plan("ncmmd_synthetic", "synthetic", gpus=1, overrides=overrides)
    assert planned["train_gflops_per_sample"] == pytest.approx(measured["gflops_per_sample"], rel=0.01)
