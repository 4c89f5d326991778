"""`lightning_overhead` for `avgen bench`: the median step time of the default
experiment (configs/bench.yaml `overhead_experiment`) under Lightning's Trainer, over the median step time of
a bare PyTorch loop doing the same work on the same model and batches: the method's `training_step`, backward,
gradient clipping and the optimizer step. Both sides leave out EMA and checkpoint writes (the same work
either way); the Trainer side keeps everything else the experiment configures (logging, progress bar,
per-step seeding, the non-finite guard, the LR monitor). Goal: at most 1.10.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import lightning as L
import torch
from omegaconf import DictConfig, open_dict

from avgen.bench.steps import bare_parts, bare_training_step, unet_step
from avgen.config import load_config
from avgen.experiment import build, make_trainer


class _StepTimer(L.Callback):
    def __init__(self):
        self.starts: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.starts.append(time.perf_counter())


def bench_lightning(cfg: DictConfig) -> dict[str, float]:
    steps, warmup = cfg.overhead_steps, 5
    with tempfile.TemporaryDirectory() as tmp:
        train_cfg = load_config(
            "train",
            [
                f"output_dir={tmp}",
                f"data.store={cfg.data.store}",
                f"trainer.max_steps={steps + warmup + 1}",
                "trainer.enable_progress_bar=true",
            ],
            experiment=cfg.overhead_experiment,
        )
        with open_dict(train_cfg):
            del train_cfg.callbacks["ema"]
            del train_cfg.callbacks["checkpoint"]
            train_cfg.trainer.enable_checkpointing = False

        # Lightning
        L.seed_everything(0, verbose=False)
        dm, module, callbacks = build(train_cfg)
        timer = _StepTimer()
        trainer = make_trainer(train_cfg, [*callbacks, timer])
        trainer.fit(module, datamodule=dm)
        lightning_step = statistics.median(b - a for a, b in zip(timer.starts[warmup:], timer.starts[warmup + 1 :]))

        # the same work in a bare loop
        L.seed_everything(0, verbose=False)
        dm, module, optimizer = bare_parts(train_cfg)
        clip = train_cfg.trainer.gradient_clip_val
        times, batches = [], iter(dm.train_dataloader())
        for i in range(steps + warmup):
            start = time.perf_counter()
            bare_training_step(module, optimizer, next(batches), i, clip)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        bare_step = statistics.median(times)
    return {
        "lightning_step_ms": 1000 * lightning_step,
        "bare_step_ms": 1000 * bare_step,
        "lightning_overhead": lightning_step / bare_step,
    }


def bench_gpu(cfg: DictConfig) -> dict[str, float]:
    """On a CUDA machine: step time, samples/s and model FLOPs utilisation of the paper-size CMMD U-Net in
    bf16 (forward + backward + Adam, batch `gpu_batch_size`, CMMD shapes), measured as `make gpu-check`
    measures it (`steps.unet_step`, peak `gpu_peak_tflops`; H100 SXM dense bf16: 989). Nothing without
    a GPU."""
    if not torch.cuda.is_available():
        return {}
    check = load_config("gpu_check", [f"peak_tflops={cfg.gpu_peak_tflops}"])
    step = unet_step(check, "cuda", cfg.gpu_batch_size, factorised=True, compiled=False, repeats=cfg.gpu_repeats)
    return {
        "gpu_name": torch.cuda.get_device_name(),
        "gpu_cmmd_step_ms": step["step_ms"],
        "gpu_cmmd_samples_per_s": step["samples_per_s"],
        "gpu_cmmd_mfu": step["mfu"],
    }


def bench_lightning_and_gpu(cfg: DictConfig) -> dict[str, float]:
    return {**bench_lightning(cfg), **bench_gpu(cfg)}
