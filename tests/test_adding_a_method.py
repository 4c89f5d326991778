"""docs/adding_a_method.md, proven: a method written here (its network and its module), its config files and
one registry line, in a copy of the repository's configs, then train -> eval -> compare through the commands.
Nothing else is touched: the commands, evaluation and the report find it through the contract alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avgen.cli.main import main
from avgen.data.clips import clips
from avgen.methods.base import DenoisingMethod

ROOT = Path(__file__).parents[1]


# 1. its model: any network with net({modality: x_t}, t) -> {modality: output} and `modalities`
class TinyJointNet(nn.Module):
    """Per-modality convolutions coupled through one pooled vector (what a joint model needs at least)."""

    modalities = ("audio", "video")

    def __init__(self, audio_channels: int = 16, video_channels: int = 3, hidden: int = 8):
        super().__init__()
        self.audio_in, self.audio_out = (
            nn.Conv1d(audio_channels, hidden, 3, padding=1),
            nn.Conv1d(hidden, audio_channels, 1),
        )
        self.video_in, self.video_out = (
            nn.Conv3d(video_channels, hidden, 3, padding=1),
            nn.Conv3d(hidden, video_channels, 1),
        )
        self.time = nn.Linear(1, hidden)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        a = self.audio_in(x["audio"])  # (B, hidden, T)
        v = self.video_in(x["video"].transpose(1, 2))  # (B, F, C, H, W) -> (B, hidden, F, H, W)
        shared = a.mean(-1) + v.mean((2, 3, 4)) + self.time(t.float()[:, None] / 1000)  # (B, hidden)
        a = F.silu(a + shared[..., None])
        v = F.silu(v + shared[..., None, None, None])
        return {"audio": self.audio_out(a), "video": self.video_out(v).transpose(1, 2)}


# 2. its method folder: the module (and, in a real method, losses.py with one function per equation)
class ToyFlowModule(DenoisingMethod):
    """Joint flow matching in a dozen lines: the base class owns the denoiser, generate and validation."""

    name = "toyflow"
    prediction = "velocity"
    default_sampler = "flow_euler"
    conditional = True

    @staticmethod
    def variant(cfg) -> str:
        return f"hidden={cfg.model.hidden}"

    def denoising_loss(self, x0: dict[str, Tensor], t: Tensor, noise: dict[str, Tensor]) -> Tensor:
        x_t = {}
        for m, x in x0.items():
            alpha, sigma = self.schedule.coefficients(t, x.ndim)
            x_t[m] = alpha * x + sigma * noise[m]
        out = self.net(x_t, t)
        return sum((noise[m] - x0[m] - out[m]).pow(2).flatten(1).mean(1) for m in x0)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        x0 = clips(batch, self.modalities)
        t = self.schedule.sample_timesteps(batch["label"].shape[0], self.device)
        loss = self.denoising_loss(x0, t, {m: torch.randn_like(x) for m, x in x0.items()}).mean()
        self.log("train/loss", loss, batch_size=t.shape[0])
        return loss

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())


# 3. its config files
MODEL = f"_target_: {__name__}.TinyJointNet\naudio_channels: 16\nvideo_channels: 3\nhidden: 8\n"
METHOD = f"""_target_: {__name__}.ToyFlowModule
schedule:
  _target_: avgen.diffusion.flow.FlowSchedule
  timestep_distribution: uniform
optimizer:
  _target_: torch.optim.Adam
  _partial_: true
  lr: 1.0e-3
"""
EXPERIMENT = """# @package _global_
defaults:
  - override /model: tiny_joint
  - override /method: toyflow
  - override /sampler: flow_euler
  - override /budget: synthetic_cpu
"""
# 4. one registry line
REGISTRY_LINE = "  toyflow_synthetic: {what: a method written in a test, smoke: [data.batch_size=4]}\n"


def test_a_new_method_is_one_folder_and_one_line(synthetic_store, tmp_path, monkeypatch, capsys):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "experiments", root / "experiments")
    (root / "configs" / "model" / "tiny_joint.yaml").write_text(MODEL)
    (root / "configs" / "method" / "toyflow.yaml").write_text(METHOD)
    (root / "experiments" / "toyflow_synthetic.yaml").write_text(EXPERIMENT)
    registry = root / "configs" / "suite" / "synthetic.yaml"
    registry.write_text(registry.read_text().replace("\nextras:", f"\n{REGISTRY_LINE}extras:"))
    monkeypatch.setenv("AVGEN_ROOT", str(root))

    from avgen.suite import representatives, runs

    assert "toyflow_synthetic" in [r.name for r in runs("synthetic")]  # `make suite` trains it
    assert "toyflow_synthetic" in representatives("synthetic", methods_only=True)  # the contract tests run it

    outputs = tmp_path / "outputs"
    common = [
        f"data.store={synthetic_store}",
        f"paths.output_dir={outputs}",
        "trainer.enable_progress_bar=false",
        "evaluate.num_videos=1",
        "evaluate.batch_size=8",
        "sampler.steps=2",
    ]
    assert (
        main(
            [
                "train",
                "experiment=toyflow_synthetic",
                "trainer.max_steps=3",
                "trainer.val_check_interval=3",
                "trainer.limit_val_batches=1",
                "evaluate.num_samples=8",
                "evaluate.num_video_to_audio=4",
                "evaluate.num_audio_to_video=0",
                "callbacks.media.num=0",
                *common,
            ]
        )
        == 0
    )
    trained = json.loads((outputs / "toyflow_synthetic" / "metrics.json").read_text())
    assert trained["method"] == "toyflow" and trained["variant"] == "hidden=8" and trained["steps"] == 3
    assert {"temporal_f1", "v2a_temporal_f1"} <= set(trained)  # joint and conditional scores, no method code
    assert trained["nfe_per_sample"] == 2 and trained["sampling_gflops_per_sample"] > 0  # what a sample cost
    samples = outputs / "toyflow_synthetic" / "samples"
    assert {"sample_000.mp4", "v2a_000.mp4", "reference_000.mp4"} <= {p.name for p in samples.iterdir()}

    assert (
        main(
            [
                "eval",
                "experiment=toyflow_synthetic",
                "evaluate.num_samples=8",
                "evaluate.num_video_to_audio=0",
                "evaluate.num_audio_to_video=0",
                "evaluate.nfe=3",
                *common,
            ]
        )
        == 0
    )  # at an equal NFE
    rescored = json.loads((outputs / "toyflow_synthetic" / "eval" / "metrics.json").read_text())
    assert rescored["num_samples"] == 8 and rescored["sampler_steps"] == 3 and rescored["nfe_per_sample"] == 3

    assert main(["compare", f"paths.output_dir={outputs}", "dataset_name=synthetic"]) == 0
    report = (outputs / "compare" / "synthetic.md").read_text()
    assert "| toyflow_synthetic | toyflow (hidden=8) |" in report and "| nfe |" in report
