"""Training compute counts every step: every micro-batch of an optimizer step under gradient accumulation,
every rank (callbacks/flops.py), with a real Trainer where it matters."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from avgen.callbacks.flops import TrainingFlops

BATCH, WIDTH = 4, 16


class Linear(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(WIDTH, WIDTH, bias=False)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def counted(accumulate: int, steps: int = 4, every: int = 1) -> dict[str, float]:
    flops = TrainingFlops(every_n_steps=every)
    data = DataLoader(TensorDataset(torch.randn(BATCH * accumulate * steps, WIDTH)), batch_size=BATCH)
    trainer = L.Trainer(
        max_steps=steps,
        accumulate_grad_batches=accumulate,
        callbacks=[flops],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Linear(), data)
    assert trainer.global_step == steps
    return flops.summary(trainer.global_step)


def test_accumulation_counts_every_micro_batch():
    # a linear layer: forward 2 W^2 per sample, backward the weight gradient 2 W^2 (the input needs none)
    per_sample = 4 * WIDTH * WIDTH
    results = {k: counted(k) for k in (1, 2, 4)}
    for k, r in results.items():
        assert r["gflops_per_sample"] * 1e9 == pytest.approx(per_sample)
        assert r["gflops_per_step"] * 1e9 == pytest.approx(per_sample * BATCH * k)  # proportional to k
        assert r["train_tflops"] * 1e12 == pytest.approx(per_sample * BATCH * k * 4)
    sampled = counted(2, steps=6, every=3)  # a counted step stands for the `every` steps from it
    assert sampled["gflops_per_step"] == pytest.approx(results[2]["gflops_per_step"])


class FakeTrainer:
    def __init__(self, world_size: int):
        self.global_step, self.world_size = 0, world_size


@pytest.mark.parametrize("world_size", [1, 2])
def test_every_rank_counts(world_size):
    """DDP: each rank does the same work on its own samples, so a step's FLOPs scale with the world size and
    the FLOPs per sample do not."""
    flops, trainer, layer = TrainingFlops(every_n_steps=1), FakeTrainer(world_size), nn.Linear(WIDTH, WIDTH)
    for step in range(2):
        trainer.global_step = step
        batch = torch.randn(BATCH, WIDTH)
        flops.on_train_batch_start(trainer, None, [batch], 0)
        layer(batch).sum().backward()
        flops.on_train_batch_end(trainer, None, None, [batch], 0)
    summary = flops.summary(2)
    assert summary["gflops_per_step"] * 1e9 == pytest.approx(4 * WIDTH * WIDTH * BATCH * world_size)
    assert summary["gflops_per_sample"] * 1e9 == pytest.approx(4 * WIDTH * WIDTH)


def test_the_counts_survive_a_resume():
    flops = TrainingFlops(every_n_steps=1)
    flops.total, flops.counted_steps, flops.counted_samples, flops.counted_flops = 1e12, 3, 12, 3e11
    again = TrainingFlops(every_n_steps=1)
    again.load_state_dict(flops.state_dict())
    assert again.summary(3) == flops.summary(3)


def _run(root, name: str, **metrics) -> None:
    (root / name / "checkpoints").mkdir(parents=True, exist_ok=True)
    (root / name / "metrics.json").write_text(json.dumps(metrics))


def test_a_fine_tune_counts_its_parent(tmp_path):
    from avgen.config import load_config
    from avgen.experiment import upstream_compute

    cfg = load_config("train", [f"paths.output_dir={tmp_path}"], experiment="cmmd_aistpp")
    assert upstream_compute(cfg, 3.0) == {
        "upstream": [{"from": "ncmmd_aistpp", "tflops": None}],
        "upstream_tflops": None,
        "total_tflops": None,
    }  # named, never 0
    _run(tmp_path, "ncmmd_aistpp", train_tflops=5.0, upstream_tflops=0.0, total_tflops=5.0)
    out = upstream_compute(cfg, 3.0)
    assert out["upstream"] == [{"from": "ncmmd_aistpp", "tflops": 5.0}]
    assert out["upstream_tflops"] == 5.0 and out["total_tflops"] == 8.0


def test_mmdisco_counts_its_bases_and_its_fake_pairs(tmp_path):
    from avgen.config import load_config
    from avgen.experiment import upstream_compute

    cfg = load_config(
        "train",
        [f"paths.output_dir={tmp_path}", f"data.fake_store={tmp_path / 'fake'}"],
        experiment="mmdisco_synthetic",
    )
    _run(tmp_path, "base_audio_synthetic", train_tflops=1.0, total_tflops=1.0)
    _run(tmp_path, "base_video_synthetic", train_tflops=2.0, total_tflops=2.0)
    out = upstream_compute(cfg, 0.5)
    assert out["upstream"][-1] == {"from": f"fake pairs {tmp_path / 'fake'}", "tflops": None}
    assert out["total_tflops"] is None  # the cache's compute is unknown until it is built
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "metadata.json").write_text(json.dumps({"sampling_tflops": 0.25}))
    out = upstream_compute(cfg, 0.5)
    assert out["upstream_tflops"] == pytest.approx(3.25) and out["total_tflops"] == pytest.approx(3.75)


def test_equal_compute_compares_totals():
    from avgen.evaluation.comparison import equal_compute

    rows = [
        {"run": "scratch", "train_tflops": 4.0, "gflops_per_step": 1.0},  # from before the totals: own only
        {"run": "fine_tune", "train_tflops": 2.0, "upstream_tflops": 4.0, "total_tflops": 6.0, "gflops_per_step": 1.0},
        {
            "run": "unknown",
            "train_tflops": 1.0,
            "upstream_tflops": None,
            "total_tflops": None,
            "upstream": [{"from": "x", "tflops": None}],
            "gflops_per_step": 1.0,
        },
    ]
    out = {r["run"]: r for r in equal_compute(rows)}
    assert out["scratch"]["compute_ratio"] == 1.0 and out["fine_tune"]["compute_ratio"] == 1.5
    assert out["scratch"]["steps_at_equal_flops"] == 4000 and out["fine_tune"]["steps_at_equal_flops"] == 0
    assert "compute_ratio" not in out["unknown"]
