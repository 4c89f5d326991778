"""Evaluation on every rank: each rank generates its share of the sample indices and the arrays are gathered,
so scoring with 2 processes writes the same samples and metrics as with 1 (CPU, gloo, the real command)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from avgen.cli.main import main
from avgen.suite import smoke_overrides
from tests.test_method_contract import workspace

# what depends on the machine and the number of processes, not on the samples
TIMING = {
    "eval_seconds",
    "sampling_seconds",
    "ms_per_fe",
    "samples_per_s",
    "peak_memory_gb",
    "torch_threads",
    "eval_ranks",
}


def _numbers(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if k not in TIMING and k != "checkpoint":
                out.update(_numbers(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


@pytest.mark.slow
def test_two_ranks_score_exactly_what_one_rank_scores(synthetic_store, tmp_path):
    experiment = "cmmd_synthetic"
    common = [f"experiment={experiment}", *smoke_overrides(experiment), *workspace(tmp_path, synthetic_store)]
    assert main(["train", *common, "evaluate.num_samples=0", "evaluate.num_video_to_audio=0",
                 "evaluate.num_audio_to_video=0"]) == 0  # fmt: skip
    scoring = [
        "evaluate.num_samples=6",  # 3 batches of 2: rank 0 draws batches 0 and 2, rank 1 batch 1
        "evaluate.batch_size=2",
        "evaluate.num_videos=2",
        "evaluate.num_video_to_audio=4",  # the test loader's batches of 2, dealt the same way
        "evaluate.num_audio_to_video=4",
        "data.batch_size=2",
        "sampler.steps=3",
        "trainer.accelerator=cpu",
    ]
    for into, devices in (("one", "trainer.devices=1"), ("two", "trainer.devices=2")):
        cmd = [sys.executable, "-m", "avgen.cli.main", "eval", *common, *scoring, devices, f"into={into}", "threads=1"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "outputs" / experiment
    one, two = (json.loads((run / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert (one["eval_ranks"], two["eval_ranks"]) == (1, 2)
    a, b = _numbers(one), _numbers(two)
    assert a.keys() == b.keys()
    assert {k: v for k, v in a.items() if a[k] != b[k]} == {}
    assert one["nfe_per_sample"] > 0 and one["num_samples"] == 6  # every rank's evaluations counted once
    for d in ("one", "two"):  # the same arrays, written once (by rank 0)
        assert sorted(p.name for p in (run / d / "samples").glob("*.mp4")) == sorted(
            p.name for p in (run / "one" / "samples").glob("*.mp4")
        )
    x, y = (np.load(run / d / "samples" / "samples.npz") for d in ("one", "two"))
    for m in ("video", "audio"):
        np.testing.assert_array_equal(x[m], y[m])


@pytest.mark.slow
def test_ddp_training_evaluates_on_both_ranks(synthetic_store, tmp_path):
    """After fit under DDP every rank generates its share; rank 0 alone writes metrics.json and the samples."""
    experiment = "cmmd_synthetic"
    cmd = [
        sys.executable,
        "-m",
        "avgen.cli.main",
        "train",
        f"experiment={experiment}",
        *smoke_overrides(experiment),
        *workspace(tmp_path, synthetic_store),
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "evaluate.num_samples=4",
        "evaluate.batch_size=2",
        "evaluate.num_videos=1",
        "evaluate.num_video_to_audio=2",
        "evaluate.num_audio_to_video=0",
        "sampler.steps=2",
        "threads=1",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "outputs" / experiment / "metrics.json").read_text())
    assert metrics["eval_ranks"] == 2 and metrics["num_samples"] == 4
    assert "v2a_temporal_f1" in metrics and np.isfinite(metrics["temporal_f1"])


def test_the_reference_loader_is_whole_on_every_rank(synthetic_store):
    """Training loaders shard over the ranks; evaluation's reference clips and conditions never do (before,
    a DDP-trained run's rank 0 scored against every other test clip)."""
    from types import SimpleNamespace

    from avgen.data.datamodule import AVDataModule

    def ids(dm, loader):
        return [i for batch in getattr(dm, loader)() for i in batch["id"]]

    alone = AVDataModule(store=str(synthetic_store), video="video_pixels", audio="audio_mel", batch_size=4)
    ranked = AVDataModule(store=str(synthetic_store), video="video_pixels", audio="audio_mel", batch_size=4)
    ranked.trainer = SimpleNamespace(world_size=2, global_rank=1)
    assert ids(ranked, "reference_loader") == ids(alone, "reference_loader") == ids(alone, "val_dataloader")
    assert len(ids(ranked, "val_dataloader")) == len(ids(alone, "val_dataloader")) // 2  # validation loss: sharded
