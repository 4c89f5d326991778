"""Every method under DDP (CPU, gloo, 2 processes) in bf16-mixed, through the real command line: finite
losses, identical weights on both ranks (MMDisCo: its double backprop under DDP), no process left behind."""

from __future__ import annotations

import pytest


def test_ddp_is_wrapped_on_the_training_stream(monkeypatch):
    """`strategy: ddp` builds avgen's strategy, which wraps DDP without entering a side CUDA stream (Lightning's
    side stream left every AccumulateGrad node on another stream than the backward: a warning and a sync per
    step on a GPU). Checked with CUDA's stream entry points made to fail, so any side stream would raise."""
    import torch

    from avgen.config import load_config
    from avgen.experiment import make_trainer
    from avgen.utils import ddp

    made = {}
    monkeypatch.setattr(ddp, "DistributedDataParallel", lambda module, device_ids, **kw: made.update(ids=device_ids))
    monkeypatch.setattr(torch.cuda, "Stream", lambda *a, **k: pytest.fail("DDP wrapped in a side stream"))
    strategy = ddp.CurrentStreamDDP()
    monkeypatch.setattr(strategy, "determine_ddp_device_ids", lambda: [0])  # as on a GPU
    strategy._setup_model(torch.nn.Linear(2, 2))
    assert made == {"ids": [0]}

    cfg = load_config(
        "train",
        [
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "trainer.strategy=ddp",
            "logger=csv",
            "output_dir=/tmp/unused",
        ],
        experiment="cmmd_synthetic",
    )
    assert isinstance(make_trainer(cfg, []).strategy, ddp.CurrentStreamDDP)


def test_gpu_check_counts_the_stream_warnings_of_each_smoke_run(tmp_path, monkeypatch):
    """`make gpu-check`'s smoke section reports, per method, how many AccumulateGrad stream warnings its log
    holds (0 expected with avgen's DDP strategy), and its table prints them."""
    from omegaconf import OmegaConf

    from avgen.bench import gpu_check

    def fake_run(args, log):
        warned = "mmdisco" in args[1]
        log.write_text("UserWarning: The AccumulateGrad node's stream does not match ...\n" * (2 if warned else 0))
        return 0, 1.0

    calls = []
    monkeypatch.setattr(gpu_check, "run_command", lambda args, log: calls.append(args) or fake_run(args, log))
    cfg = OmegaConf.create({"smoke_steps": 2})
    result = gpu_check.smoke(cfg, "cpu", tmp_path, ["cmmd_synthetic", "mmdisco_synthetic"])
    assert {k: v["stream_warnings"] for k, v in result.items()} == {"cmmd_synthetic": 0, "mmdisco_synthetic": 2}
    compiled = gpu_check.smoke(cfg, "cpu", tmp_path, ["mmdisco_synthetic"], compiled=True)
    assert "compile=true" in calls[-1] and "compile=true" not in calls[0]
    # every run at the registry's smoke sizes, in one outputs folder: MMDisCo finds the bases trained before it
    assert "debug=smoke" in calls[0] and "name=mmdisco_synthetic_compiled" in calls[-1]
    assert len({a for c in calls for a in c if a.startswith("paths.output_dir=")}) == 1
    table = gpu_check.format_results(
        {"device": "cpu", "torch": "x", "cuda": None, "smoke": result, "smoke_compiled": compiled}
    )
    assert "AccumulateGrad stream warnings: 2" in table and "smoke mmdisco_synthetic_compiled" in table
