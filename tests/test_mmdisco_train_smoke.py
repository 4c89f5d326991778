"""The MMDisCo chain through the command line: bases -> (missing-base error) -> fake cache -> discriminator."""

from __future__ import annotations

import json

import pytest
import torch

from avgen.cli.main import main

TINY_UNET = ["model.base_channels=8", "model.head_dim=8"]
SHORT = [
    "data.batch_size=4",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint.every_n_train_steps=2",
]


@pytest.mark.slow
def test_mmdisco_chain(synthetic_store, tmp_path, capsys):
    outputs = tmp_path / "outputs"
    common = [f"paths.output_dir={outputs}", f"paths.data_dir={tmp_path / 'data'}"]
    args = [
        "train",
        "experiment=mmdisco_synthetic",
        *common,
        f"data.real.store={synthetic_store}",
        "data.real.batch_size=4",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "trainer.enable_progress_bar=false",
        "callbacks.checkpoint.every_n_train_steps=2",
        "method.fake_cache.num=8",
        "method.fake_cache.batch_size=4",
        "method.fake_cache.steps=2",
        "model.base_channels=8",
        "model.head_dim=16",
        "evaluate.num_samples=4",
        "evaluate.num_videos=1",
        "evaluate.batch_size=4",
        "sampler.steps=2",
    ]
    assert main(args) == 2  # no base checkpoints yet: the error names them and the commands
    err = capsys.readouterr().err
    assert "base_audio_synthetic" in err and "make train EXP=base_video_synthetic" in err
    for m in ("audio", "video"):
        assert (
            main(
                [
                    "train",
                    f"experiment=base_{m}_synthetic",
                    *common,
                    f"data.store={synthetic_store}",
                    *TINY_UNET,
                    *SHORT,
                ]
            )
            == 0
        )
    # the fake pairs as their own step; training then finds them and samples none
    assert main(["fake-cache", *args[1:]]) == 0
    cache = tmp_path / "data" / "synthetic" / "fake_cache" / "metadata.json"
    built = cache.stat().st_mtime_ns
    assert main(args) == 0
    metrics = json.loads((outputs / "mmdisco_synthetic" / "metrics.json").read_text())
    assert 0.0 <= metrics["semantic_agreement"] <= 1.0 and metrics["steps"] == 2
    assert cache.stat().st_mtime_ns == built
    ckpt = outputs / "mmdisco_synthetic" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert not any(k.startswith("bases.") for key in ("state_dict", "current_model_state") for k in state[key])
    # re-scored from the checkpoint, e.g. with another guidance scale: eval/metrics.json beside the run's own
    assert main(["eval", *args[1:], "method.guidance_scales.audio=2"]) == 0
    rescored = json.loads((outputs / "mmdisco_synthetic" / "eval" / "metrics.json").read_text())
    assert rescored["steps"] == 2 and 0.0 <= rescored["no_joint_semantic_agreement"] <= 1.0
    # resumed with weight averaging on: the callback restores its state although the bases are left out
    assert main([*args, "resume=true", "trainer.max_steps=3"]) == 0
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] == 3
    # mixed fakes read the same cache (not sampled again) and half of each batch shifted from the real store
    assert main([*args, "name=mixed", "data.fakes=mixed"]) == 0
    mixed = json.loads((outputs / "mixed" / "metrics.json").read_text())
    assert mixed["steps"] == 2 and cache.stat().st_mtime_ns == built
    assert mixed["upstream_tflops"] == metrics["upstream_tflops"]  # the fake pairs' sampling counted as before
