"""Fused optimizers with gradient clipping under mixed precision (utils/precision.py)."""

from __future__ import annotations

import pytest
import torch

from avgen.utils.precision import ClippingMixedPrecision


def _model_and_fused_adam():
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 8)
    net(torch.randn(4, 8)).pow(2).sum().mul(100).backward()  # a gradient norm far above the clip
    return net, torch.optim.Adam(net.parameters(), fused=True)


def test_bf16_clips_the_gradients_of_a_fused_optimizer():
    net, optimizer = _model_and_fused_adam()
    assert torch.nn.utils.get_total_norm([p.grad for p in net.parameters()]) > 10
    ClippingMixedPrecision("bf16-mixed", "cpu").clip_gradients(optimizer, clip_val=1.0)
    assert torch.nn.utils.get_total_norm([p.grad for p in net.parameters()]) == pytest.approx(1.0, rel=1e-4)


def test_float16_with_a_fused_optimizer_and_clipping_names_the_fix():
    net, optimizer = _model_and_fused_adam()
    with pytest.raises(ValueError, match="method.optimizer.fused=false"):
        ClippingMixedPrecision("16-mixed", "cpu").clip_gradients(optimizer, clip_val=1.0)


def test_the_trainer_takes_the_plugin_for_mixed_precision(tmp_path):
    from avgen.config import load_config
    from avgen.experiment import make_trainer

    cfg = load_config("train", [f"output_dir={tmp_path}", "trainer.precision=bf16-mixed"])
    trainer = make_trainer(cfg, [])
    assert isinstance(trainer.precision_plugin, ClippingMixedPrecision) and trainer.precision == "bf16-mixed"
