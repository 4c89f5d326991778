"""A run folder a user can trust: failed starts leave no trace and never touch a finished run, resume is
explicit, misspelt keys get the real name, and progress shows as plain lines in log files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from avgen.cli.main import main

TINY = [
    "model.base_channels=8",
    "model.head_dim=8",
    "data.batch_size=4",
    "trainer.max_steps=3",
    "trainer.val_check_interval=3",
    "trainer.limit_val_batches=1",
    "callbacks.checkpoint.every_n_train_steps=3",
    "callbacks.media.num=0",
    "evaluate.num_samples=4",
    "evaluate.num_videos=1",
    "evaluate.batch_size=4",
    "evaluate.num_video_to_audio=0",
    "sampler.steps=2",
    "callbacks.progress.every_seconds=0",
]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(synthetic_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "finished"
    args = ["train", "experiment=ncmmd_synthetic", f"data.store={synthetic_store}", f"output_dir={out}", *TINY]
    assert main(args) == 0
    return out, args


def test_training_progress_is_plain_step_lines_in_a_log(finished, capsys, synthetic_store, tmp_path):
    out = tmp_path / "progress"
    shorter = "callbacks.checkpoint.every_n_train_steps=500"  # a run shorter than the checkpoint interval
    args = ["train", "experiment=ncmmd_synthetic", f"data.store={synthetic_store}", f"output_dir={out}", *TINY]
    assert main([*args, shorter]) == 0
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.ckpt"]  # one checkpoint, no last-v1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert any(line.startswith("step 3/3 (100%) | loss ") and "steps/s" in line for line in lines), captured.err
    assert not any("\r" in line for line in lines)  # no redrawn bar in a file
    assert "Tip:" not in captured.err and "litlogger" not in captured.err  # noise filtered (utils/warnings.py)
    assert any(line.startswith("sampling (batches): 1/1 done") for line in lines)
    assert f"done: {out} (metrics.json: temporal_f1" in captured.out
    assert "expected on this machine: setup ~" in captured.out  # the module's first run measured this shape
    header = (out / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss" in header  # even a 3-step run logs it
    assert "perf/samples_per_s" in header and "perf/peak_memory_gb" in header  # throughput and memory


@pytest.mark.parametrize(
    "bad,message",
    [
        ("trainer.max_step=5", "unknown config key trainer.max_step; did you mean trainer.max_steps?"),
        (
            "+trainer.max_step=5",
            "trainer.max_step is not a parameter of lightning.Trainer; did you mean trainer.max_steps?",
        ),
        ("model.base_chanels=4", "did you mean model.base_channels?"),
    ],
)
def test_a_failed_start_leaves_the_finished_run_byte_identical(finished, capsys, bad, message):
    out, args = finished
    before = snapshot(out)
    assert main([*args, bad]) == 2
    err = capsys.readouterr().err
    assert message in err and "+trainer" not in err.replace(bad, "")  # no advice to append with +
    assert snapshot(out) == before


def test_a_finished_run_is_not_replaced_without_being_asked(finished, capsys):
    out, args = finished
    before = snapshot(out)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "RESUME=1" in err and "overwrite=true" in err
    assert main([*args, "resume=true"]) == 0  # resuming a finished run: says so, does nothing
    assert "is finished (3 of 3 steps" in capsys.readouterr().out
    assert snapshot(out) == before


def test_a_failed_start_in_a_new_folder_leaves_no_trace(synthetic_store, tmp_path, capsys):
    out = tmp_path / "never"
    assert (
        main(
            [
                "train",
                "experiment=ncmmd_synthetic",
                f"data.store={synthetic_store}",
                f"output_dir={out}",
                "+trainer.max_step=5",
            ]
        )
        == 2
    )
    assert not out.exists()


def test_resume_without_a_checkpoint_is_an_error(synthetic_store, tmp_path, capsys):
    out = tmp_path / "fresh"
    assert (
        main(
            [
                "train",
                "experiment=ncmmd_synthetic",
                f"data.store={synthetic_store}",
                f"output_dir={out}",
                "resume=true",
                *TINY,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"{out / 'checkpoints' / 'last.ckpt'} does not exist: there is nothing to resume" in err
    assert not out.exists()


@pytest.mark.slow  # a whole extra CLI run
def test_overwrite_starts_over(finished, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    (out / "keep.txt").write_text("not the run's")
    args = [a if not a.startswith("output_dir=") else f"output_dir={out}" for a in finished[1]]
    assert main([*args, "overwrite=true"]) == 0
    assert "overwrite=true: removed checkpoints" in capsys.readouterr().out
    assert (out / "metrics.json").is_file() and (out / "keep.txt").read_text() == "not the run's"


@pytest.mark.slow  # a whole extra CLI run
def test_eval_reproduces_the_training_metrics_exactly(synthetic_store, tmp_path):
    """Sample i is generated from seed + i: re-scoring the same checkpoint gives the same numbers, joint and
    video-to-audio alike."""
    import json

    out = tmp_path / "run"
    args = [
        "experiment=cmmd_synthetic",
        f"data.store={synthetic_store}",
        f"output_dir={out}",
        *TINY,
        "evaluate.num_video_to_audio=4",
        "evaluate.batch_size=3",
    ]
    assert main(["train", *args]) == 0
    assert main(["eval", *args, "evaluate.batch_size=2"]) == 0  # another batch size: the same samples
    trained = json.loads((out / "metrics.json").read_text())
    rescored = json.loads((out / "eval" / "metrics.json").read_text())
    keys = [k for k in trained if k.startswith(("temporal", "semantic", "v2a_"))]
    assert any(k.startswith("v2a_") for k in keys) and len(keys) >= 6
    assert {k: rescored[k] for k in keys} == {k: trained[k] for k in keys}


def test_seeded_noise_does_not_depend_on_the_batch():
    import torch

    from avgen.sampling.samplers import initial_noise

    whole = initial_noise({"audio": (4, 2, 3), "video": (4, 5)}, seeds=[7, 8, 9, 10])
    parts = [initial_noise({"audio": (2, 2, 3), "video": (2, 5)}, seeds=s) for s in ([7, 8], [9, 10])]
    for m in whole:
        assert torch.equal(whole[m], torch.cat([p[m] for p in parts]))
    assert not torch.equal(whole["audio"][0], whole["audio"][1])


def test_missing_prerequisites_are_named_to_the_root_in_order(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "experiment=mmdisco_aistpp_cmmd",
                f"paths.output_dir={tmp_path / 'out'}",
                f"paths.data_dir={tmp_path / 'data'}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    order = [
        err.index(s)
        for s in ("make prepare DATASET=aistpp", "make train EXP=ncmmd_aistpp", "make train EXP=cmmd_aistpp")
    ]
    assert order == sorted(order) and "mmdisco_aistpp_cmmd cannot start" in err
    assert "make pipeline EXP=mmdisco_aistpp_cmmd" in err  # the upstream runs in one command
    assert "vae_path=sd-vae-ft-mse" in err  # the SD-VAE by its registry name
    import torch

    if not torch.cuda.is_available():  # the paper setting trains on GPUs: said first
        assert err.index("a GPU (this experiment trains with trainer=gpu") < order[0], err
    assert not (tmp_path / "out").exists()


CRASH_IN_METRICS = """
import os, sys
import avgen.evaluation.calibration as calibration
calibration.calibrated_scores = lambda *a, **k: os.abort()  # a native crash inside a metric
from avgen.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_native_crash_in_a_metric_loses_no_work(synthetic_store, tmp_path):
    """The checkpoint and the samples are on disk before any metric runs; `avgen eval` recomputes the metrics
    and RESUME=1 finishes the run."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    args = ["train", "experiment=ncmmd_synthetic", f"data.store={synthetic_store}", f"output_dir={out}", *TINY]
    proc = subprocess.run([sys.executable, "-c", CRASH_IN_METRICS, *args], capture_output=True, text=True)
    assert proc.returncode < 0, proc.stderr[-2000:]  # killed by the signal
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "samples" / "samples.npz").is_file()
    assert not (out / "metrics.json").exists()
    assert main(["eval", *args[1:]]) == 0
    assert "temporal_f1" in json.loads((out / "eval" / "metrics.json").read_text())
    assert main([*args, "resume=true"]) == 0  # training was complete: scoring only
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
