"""Preemption on clusters: SLURM sends a signal some time before a job's limit (`#SBATCH
--signal=USR1@180`, scripts/slurm/train.sbatch); the run finishes the step it is in (with several processes,
the next step at which they agree: every `agree_every_n_steps`), writes
`checkpoints/last.ckpt` (atomically, like every checkpoint), asks SLURM to requeue the job (`scontrol requeue`,
on rank 0, when `SLURM_JOB_ID` is set) and stops with exit status 3 without evaluating. The requeued job runs
the same command with `resume=auto`, which continues from that checkpoint exactly (per-step seeds, the training
clock and the counted compute travel in it).

The handler only sets a flag: the checkpoint is written between steps, never from inside a signal handler in
the middle of one (Lightning's own SLURM handler saves from the handler; `make_trainer` turns it off where
this callback is configured).
"""

from __future__ import annotations

import os
import signal
import subprocess

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from avgen.callbacks.reliability import save_last

EXIT_REQUEUED = 3  # `avgen train`'s exit status after a preemption checkpoint


class Preemption(L.Callback):
    def __init__(self, signal_name: str = "SIGUSR1", agree_every_n_steps: int = 10):
        self.signum = getattr(signal, signal_name)
        self.agree_every = agree_every_n_steps
        self.received = False
        self.stopped = False  # training stopped here for a preemption: no evaluation follows

    def on_fit_start(self, trainer, pl_module) -> None:
        signal.signal(self.signum, self._handler)

    def _handler(self, signum, frame) -> None:
        self.received = True

    def on_train_batch_end(self, trainer, *args) -> None:
        received = self.received
        if trainer.world_size > 1:
            # every rank stops at the same step, whichever was signalled; one collective every
            # `agree_every_n_steps` steps, not one per step
            if trainer.global_step % self.agree_every != 0:
                return
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        if not received or self.stopped:
            return
        path = save_last(trainer)
        self.stopped = True
        trainer.should_stop = True
        rank_zero_info(f"preempted at step {trainer.global_step}: wrote {path}; {requeue()}")


def requeue() -> str:
    """Ask SLURM to requeue this job (rank 0 only); what happened, in words."""
    if int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))) != 0:
        return "rank 0 requeues the job"
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    if not job:
        return "not a SLURM job: resume with resume=auto (RESUME=1)"
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        rank_zero_warn(f"scontrol requeue {job} failed: {e}")
        return f"requeue of job {job} failed ({e}); resume with resume=auto"
    if done.returncode != 0:
        return f"scontrol requeue {job} failed ({done.stderr.strip() or done.returncode}); resume with resume=auto"
    return f"job {job} requeued"
