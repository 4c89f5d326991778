"""Preemption (callbacks/preemption.py): the cluster's pre-timeout signal writes last.ckpt at a step boundary,
requeues the job and exits 3; `resume=auto` continues it to the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest
import torch

from avgen.experiment import start_point


def test_resume_auto_starts_a_new_run_and_continues_an_unfinished_one(tmp_path):
    assert start_point(tmp_path, "auto", False, 10) == (None, None)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert start_point(tmp_path, "auto", False, 10) == (str(tmp_path / "checkpoints" / "last.ckpt"), None)
    (tmp_path / "metrics.json").write_text('{"steps": 10}')
    assert "is finished" in start_point(tmp_path, "auto", False, 10)[1]


def test_the_slurm_trainer_takes_its_node_count_from_slurm(monkeypatch):
    from avgen.config import load_config

    monkeypatch.setenv("SLURM_NNODES", "4")
    cfg = load_config("train", ["trainer=slurm"])
    assert cfg.trainer.num_nodes == 4 and cfg.trainer.strategy == "ddp" and cfg.trainer.accelerator == "gpu"


@pytest.mark.slow
def test_sigusr1_checkpoints_requeues_and_resumes_to_the_same_weights(synthetic_store, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "scontrol_args"}\n')
    (fake / "scontrol").chmod(stat.S_IRWXU)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PATH": f"{fake}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}
    env.pop("SLURM_NTASKS", None)

    def cmd(name, *extra):
        return [
            sys.executable,
            "-m",
            "avgen.cli.main",
            "train",
            "experiment=ncmmd_synthetic",
            f"data.store={synthetic_store}",
            f"paths.output_dir={tmp_path / 'outputs'}",
            f"name={name}",
            "model.base_channels=8",
            "model.head_dim=8",
            "data.batch_size=4",
            "trainer.max_steps=40",
            "trainer.val_check_interval=1000",
            "callbacks.checkpoint.every_n_train_steps=1000",
            "callbacks.media.num=0",
            "callbacks.progress.every_seconds=0",
            "evaluate.num_samples=0",
            "evaluate.num_video_to_audio=0",
            "evaluate.num_audio_to_video=0",
            "threads=1",
            *extra,
        ]

    subprocess.run(cmd("straight"), check=True, env=env, capture_output=True)
    job = subprocess.Popen(
        cmd("preempted", "resume=auto"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    for line in job.stderr:  # progress lines, one per step
        if line.startswith("step 5/"):
            job.send_signal(signal.SIGUSR1)
            break
    rest = job.stderr.read()
    assert job.wait() == 3, rest
    last = tmp_path / "outputs" / "preempted" / "checkpoints" / "last.ckpt"
    at_signal = torch.load(last, weights_only=True)
    assert 5 <= at_signal["global_step"] < 40 and not (last.parent.parent / "metrics.json").exists()
    assert (tmp_path / "scontrol_args").read_text().split() == ["requeue", "4242"]
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
    # the requeued job: the same command
    subprocess.run(cmd("preempted", "resume=auto"), check=True, env=env, capture_output=True)
    runs = {
        n: torch.load(tmp_path / "outputs" / n / "checkpoints" / "last.ckpt", weights_only=True)
        for n in ("straight", "preempted")
    }
    assert runs["preempted"]["global_step"] == runs["straight"]["global_step"] == 40
    for k, v in runs["straight"]["state_dict"].items():
        torch.testing.assert_close(runs["preempted"]["state_dict"][k], v, rtol=0, atol=0, msg=k)
