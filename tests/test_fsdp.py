"""FSDP2 (`trainer.strategy=fsdp`, Lightning's ModelParallelStrategy) on 2 CPU processes over gloo, through the
command line: both networks train sharded with their EMA, write a distributed checkpoint that resumes exactly
and consolidates into an ordinary one, and evaluate on both ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from avgen.suite import smoke_overrides
from avgen.utils.checkpoints import consolidate
from tests.test_method_contract import workspace

FSDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=fsdp", "trainer.precision=bf16-mixed"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["flowdit_synthetic", "ncmmd_synthetic"])
def test_fsdp_trains_resumes_exactly_and_consolidates(synthetic_store, tmp_path, experiment):
    """A straight run against one preempted at a step boundary (SIGUSR1, as SLURM's pre-timeout signal) and
    requeued: the same training weights and EMA, bit for bit, through the distributed checkpoint."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "SLURM_JOB_ID": "", "PATH": os.environ["PATH"]}
    common = [sys.executable, "-m", "avgen.cli.main", "train", f"experiment={experiment}"]
    common += [*smoke_overrides(experiment), *workspace(tmp_path, synthetic_store), *FSDP, "threads=1"]
    common += ["trainer.max_steps=24", "trainer.val_check_interval=1000", "trainer.enable_progress_bar=true"]
    common += ["callbacks.progress.every_seconds=0"]  # a progress line per step: when to send the signal
    scoring = ["evaluate.num_samples=2", "evaluate.batch_size=1", "evaluate.num_videos=0", "sampler.steps=2"]
    scoring += ["evaluate.num_video_to_audio=0", "evaluate.num_audio_to_video=0"]
    done = subprocess.run(  # scored after fit from the gathered EMA weights
        [*common, "name=straight", *scoring], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    job = subprocess.Popen(
        [*common, "name=preempted", "resume=auto"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in job.stderr:
        if line.startswith("step 3/"):
            job.send_signal(signal.SIGUSR1)
            break
    rest = job.stderr.read()
    assert job.wait() == 3, rest[-3000:]  # checkpointed at the next agreement point and stopped
    out = tmp_path / "outputs"
    folder = out / "preempted" / "checkpoints" / "last.ckpt"
    assert (folder / ".metadata").is_file() and (folder / "meta.pt").is_file()  # a distributed checkpoint
    assert 3 <= consolidate(folder)["global_step"] < 24
    again = subprocess.run([*common, "name=preempted", "resume=auto"], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = {n: consolidate(out / n / "checkpoints" / "last.ckpt") for n in ("straight", "preempted")}
    assert runs["straight"]["global_step"] == runs["preempted"]["global_step"] == 24
    for state in ("current_model_state", "state_dict"):  # the training weights and the sharded EMA
        assert runs["straight"][state].keys() == runs["preempted"][state].keys()
        for k, v in runs["straight"][state].items():
            torch.testing.assert_close(runs["preempted"][state][k], v, rtol=0, atol=0, msg=f"{state} {k}")
    ema, current = runs["straight"]["state_dict"], runs["straight"]["current_model_state"]
    assert ema.keys() == current.keys()
    assert any(not torch.equal(ema[k], current[k]) for k in current)  # the EMA is its own average
    for k in ema:  # a parameter under two names (denoiser.net is net) has one EMA under both
        if k.startswith("denoiser."):
            assert torch.equal(ema[k], ema[k[len("denoiser.") :]]), k
    # make eval reads the folder (consolidated in memory) and scores on both ranks
    evaluate = [sys.executable, "-m", "avgen.cli.main", "eval", f"experiment={experiment}", "name=straight"]
    evaluate += [*smoke_overrides(experiment), *workspace(tmp_path, synthetic_store), "threads=1"]
    evaluate += ["trainer.accelerator=cpu", "trainer.devices=2", *scoring]
    scored = subprocess.run(evaluate, capture_output=True, text=True, env=env, timeout=600)
    assert scored.returncode == 0, scored.stderr[-3000:]
    metrics = json.loads((out / "straight" / "eval" / "metrics.json").read_text())
    assert metrics["steps"] == 24 and metrics["num_samples"] == 2 and metrics["eval_ranks"] == 2
    # the consolidated weights sample what the sharded run's gathered weights sampled after fit
    trained = json.loads((out / "straight" / "metrics.json").read_text())
    for key in ("temporal_f1", "lag_contrast", "semantic_agreement", "nfe_per_sample"):
        assert metrics[key] == trained[key], key
    # and one file for anything else
    file = out / "straight.ckpt"
    folder = out / "straight" / "checkpoints" / "last.ckpt"
    subprocess.run([sys.executable, "-m", "avgen.cli.main", "consolidate", str(folder), f"out={file}"], check=True)
    assert torch.load(file, weights_only=True)["state_dict"].keys() == ema.keys()
