"""Every method under DDP (CPU, gloo, 2 processes) in bf16-mixed, through the real command line: finite
losses, identical weights on both ranks (MMDisCo: its double backprop under DDP), no process left behind."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from avgen.cli.main import main

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "trainer.precision=bf16-mixed",
       "trainer.max_steps=4", "trainer.log_every_n_steps=1", "trainer.val_check_interval=1000",
       "trainer.enable_progress_bar=false", "evaluate.num_samples=0"]


def run_ddp(out, *args: str) -> None:
    cmd = [sys.executable, "-m", "avgen.cli.main", "train", f"output_dir={out}", *args, *DDP]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    leftover = subprocess.run(["pgrep", "-f", f"output_dir={out}"], capture_output=True, text=True).stdout.split()
    assert not leftover, f"processes left behind: {leftover}"


def check_run(out) -> None:
    replicas = json.loads((out / "replicas.json").read_text())
    assert replicas["world_size"] == 2 and replicas["step"] == 4
    assert len(set(replicas["checksums"])) == 1  # identical weights on both ranks
    with open(out / "logs" / "metrics.csv") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)


@pytest.mark.slow
def test_cmmd_ddp_bf16(synthetic_store, tmp_path):
    out = tmp_path / "cmmd"
    run_ddp(out, "experiment=cmmd_synthetic", f"data.store={synthetic_store}", "model.base_channels=8",
            "model.head_dim=8", "data.batch_size=4", "method.contrastive_from_step=2", "method.negatives_per_step=2")
    check_run(out)


@pytest.fixture(scope="module")
def tiny_bases(synthetic_store, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("bases")
    for m in ("audio", "video"):
        assert main(["train", f"experiment=base_{m}_synthetic", f"paths.output_dir={outputs}",
                     f"data.store={synthetic_store}", "model.base_channels=8", "model.head_dim=8",
                     "data.batch_size=4", "trainer.max_steps=2", "trainer.enable_progress_bar=false",
                     "evaluate.num_samples=0"]) == 0
    return outputs


@pytest.mark.slow
def test_mmdisco_ddp_bf16_double_backprop(synthetic_store, tiny_bases, tmp_path):
    out = tmp_path / "mmdisco"
    run_ddp(out, "experiment=mmdisco_synthetic", f"paths.output_dir={tiny_bases}",
            f"data.real.store={synthetic_store}", f"data.fake_store={tmp_path / 'fake'}", "data.real.batch_size=4",
            "method.fake_cache.num=8", "method.fake_cache.batch_size=4", "method.fake_cache.steps=2",
            "model.base_channels=8", "model.head_dim=16")
    check_run(out)
    assert (tmp_path / "fake" / "metadata.json").is_file()  # built once, by rank 0
    with open(out / "logs" / "metrics.csv") as f:
        dsm = [float(r["train/loss_dsm"]) for r in csv.DictReader(f) if r.get("train/loss_dsm")]
    assert len(dsm) == 4 and all(math.isfinite(x) for x in dsm)


@pytest.mark.slow
def test_flow_matching_ddp_bf16(synthetic_store, tmp_path):
    out = tmp_path / "flowdit"
    run_ddp(out, "experiment=flowdit_synthetic", f"data.store={synthetic_store}", "model.width=32", "model.heads=2",
            "model.depth=2", "data.batch_size=4")
    check_run(out)


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

    cfg = load_config("train", ["trainer.accelerator=cpu", "trainer.devices=1", "trainer.strategy=ddp",
                                "logger=csv", "output_dir=/tmp/unused"], experiment="cmmd_synthetic")
    assert isinstance(make_trainer(cfg, []).strategy, ddp.CurrentStreamDDP)


def test_gpu_check_counts_the_stream_warnings_of_each_smoke_run(tmp_path, monkeypatch):
    """`make gpu-check`'s smoke section reports, per method, how many AccumulateGrad stream warnings its log
    holds (0 expected with avgen's DDP strategy), and its table prints them."""
    from omegaconf import OmegaConf

    from avgen.cli import gpu_check

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
    assert any(a.startswith("method.bases.audio=") for a in calls[-1])  # over the plain smoke run's bases
    table = gpu_check.format_results({"device": "cpu", "torch": "x", "cuda": None, "smoke": result,
                                      "smoke_compiled": compiled})
    assert "AccumulateGrad stream warnings: 2" in table and "smoke mmdisco_synthetic_compiled" in table
