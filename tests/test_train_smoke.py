"""One short CPU training run through the real command line, per coupling: outputs, checkpoint, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avgen.cli.main import main


@pytest.mark.slow
@pytest.mark.parametrize(
    "coupling,experiment",
    [("easy_fusion", "cmmd_synthetic"), ("rs_mma", "cmmd_synthetic"), ("none", "ncmmd_synthetic")],
)
def test_smoke_train(synthetic_store, tmp_path, coupling, experiment):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            f"experiment={experiment}",
            f"data.store={synthetic_store}",
            f"output_dir={out}",
            f"model.coupling={coupling}",
            "model.base_channels=8",
            "model.head_dim=8",
            "data.batch_size=4",
            "trainer.max_steps=3",
            "trainer.val_check_interval=2",
            "trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false",
            "callbacks.checkpoint.every_n_train_steps=2",
            "evaluate.num_samples=4",
            "evaluate.num_videos=1",
            "evaluate.batch_size=4",
            "sampler.steps=2",
        ]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "temporal_alignment",
        "semantic_agreement",
        "temporal_alignment_shuffled",
        "semantic_agreement_shuffled",
    ):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["steps"] == 3 and metrics["parameters"] > 0
    for key in ("fd_video_pixels", "fd_audio_mel"):  # each modality's fidelity, beside the alignment scores
        assert np.isfinite(metrics[key]) and metrics["protocol"][key]["num_samples"] == 4, key
    assert (out / "samples" / "sample_000.mp4").stat().st_size > 0
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["avgen_config"]["model"]["coupling"] == coupling  # reloadable without the command line
    assert ckpt["global_step"] == 3  # the last step, though the periodic saves fall on step 2
    assert any(k.startswith("net.") for k in ckpt["state_dict"])
    if coupling == "easy_fusion":  # make sample: conditions from the test split, mp4s with audio, arrays
        common = [
            f"experiment={experiment}",
            f"data.store={synthetic_store}",
            f"output_dir={out}",
            "model.base_channels=8",
            "model.head_dim=8",
            "data.batch_size=4",
            "sampler.steps=2",
        ]
        assert main(["sample", *common, "mode=v2a", "num=3"]) == 0
        samples = out / "samples_v2a"
        assert sorted(p.name for p in samples.glob("*.mp4")) == [f"sample_{i:03d}.mp4" for i in range(3)]
        arrays = np.load(samples / "samples.npz")
        assert arrays["video"].shape[0] == 3 and arrays["audio"].shape[0] == 3
        assert len(json.loads((samples / "conditions.json").read_text())["clips"]) == 3
        assert main(["sample", *common, "mode=sideways"]) == 2


def test_missing_store_names_the_command(tmp_path, capsys):
    rc = main(["train", "experiment=cmmd_synthetic", f"data.store={tmp_path / 'nowhere'}", f"output_dir={tmp_path}"])
    assert rc == 2
    assert "make data" in capsys.readouterr().err


def test_misspelt_train_key_fails(tmp_path, capsys):
    assert main(["train", "experiment=cmmd_synthetic", "trainer.max_stepz=3", f"output_dir={tmp_path}"]) == 2
    assert "max_stepz" in capsys.readouterr().err
