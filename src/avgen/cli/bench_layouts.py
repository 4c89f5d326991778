"""The two layouts of the dual U-Net's video convolutions, measured in turns in one `avgen bench` run.

The video convolutions were Conv3d layers with (1, 3, 3) and (3, 1, 1) kernels; on CUDA they now run as 2-D
convolutions over reshaped tensors (`models/unets/blocks.py`: same parameters, `FACTORISED_CONVS`), on the
CPU as Conv3d still, because these figures found the per-frame layout no faster there. The flag is read at
call time, so one process measures both in turns (A, B, A, B, ...) on the same network:
- conv_layout_unet_ms_per_fe_{conv3d,frame_convs}: the paper-size U-Net (easy fusion) per function
  evaluation on a CMMD-shaped input, batch 1, as `unet_ms_per_fe_*`;
- conv_layout_default_step_ms_{conv3d,frame_convs}: one training step of the default experiment (its model,
  batch and optimizer; the method's `training_step`, backward, clipping, Adam) on one of its own batches,
  in the joint-loss phase (no trainer: global step 0, before the contrastive term starts);
- conv_layout_{unet,default}_speedup: conv3d / frame_convs, with the spread of the per-round ratios;
and torch.profiler operator tables of three default-experiment steps per layout next to the results
(`profile_default_{conv3d,frame_convs}.txt`, sorted by CPU time).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

import avgen.models.unets.blocks as blocks
from avgen.cli.bench_lightning import bare_training_step
from avgen.config import load_config
from avgen.experiment import build
from avgen.utils.io import write_text
from avgen.utils.timing import interleaved, medians

LAYOUTS = {"conv3d": False, "frame_convs": True}  # name -> blocks.FACTORISED_CONVS


@contextlib.contextmanager
def conv_layout(factorised: bool) -> Iterator[None]:
    previous, blocks.FACTORISED_CONVS = blocks.FACTORISED_CONVS, factorised
    try:
        yield
    finally:
        blocks.FACTORISED_CONVS = previous


def in_layout(fn: Callable[[], object], factorised: bool) -> Callable[[], object]:
    def call() -> object:
        with conv_layout(factorised):
            return fn()
    return call


def default_experiment_step(experiment: str, overrides: list[str]) -> Callable[[], None]:
    """One bare training step of `experiment` on a fixed batch of its own data, as a function."""
    train_cfg = load_config("train", overrides, experiment=experiment)
    with open_dict(train_cfg):
        del train_cfg.callbacks["ema"]
    torch.manual_seed(0)
    dm, module, _ = build(train_cfg)
    dm.setup("fit")
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    batch = next(iter(dm.train_dataloader()))
    module.train()
    return lambda: bare_training_step(module, optimizer, batch, 0, train_cfg.trainer.gradient_clip_val)


def speedups(times: dict[str, list[float]], prefix: str, speedup: str) -> dict[str, float]:
    """Medians (ms) and spreads of both layouts, and conv3d / frame_convs with the spread of per-round ratios."""
    out = medians(times, f"{prefix}_")
    ratios = [a / b for a, b in zip(times["conv3d"], times["frame_convs"])]
    out[speedup] = statistics.median(times["conv3d"]) / statistics.median(times["frame_convs"])
    out[f"{speedup}_spread"] = max(ratios) - min(ratios)
    return out


def profile_tables(step: Callable[[], None], folder: Path, name: str, steps: int = 3) -> None:
    from torch.profiler import ProfilerActivity, profile

    for layout, factorised in LAYOUTS.items():
        with conv_layout(factorised):
            step()  # warm-up outside the profile
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(steps):
                    step()
        write_text(folder / f"profile_{name}_{layout}.txt",
                   prof.key_averages().table(sort_by="cpu_time_total", row_limit=25))


def bench_conv_layouts(cfg: DictConfig) -> dict[str, float]:
    x = {"video": torch.randn(1, 18, 4, 16, 16), "audio": torch.randn(1, 80, 112)}
    unet_cfg = load_config("train", [f"model={cfg.unet_model}", "name=bench"]).model
    net = instantiate(unet_cfg, coupling="easy_fusion", video_channels=4, audio_channels=80).eval()
    t = torch.tensor([500])
    with torch.inference_mode():
        times = interleaved({k: in_layout(lambda: net(x, t), f) for k, f in LAYOUTS.items()},
                            cfg.unet_repeats, warmup=1)
    results = speedups(times, "conv_layout_unet_ms_per_fe", "conv_layout_unet_speedup")
    with tempfile.TemporaryDirectory() as tmp:
        step = default_experiment_step(cfg.overhead_experiment, [f"output_dir={tmp}", f"data.store={cfg.data.store}"])
        times = interleaved({k: in_layout(step, f) for k, f in LAYOUTS.items()}, cfg.layout_steps, warmup=2)
        results.update(speedups(times, "conv_layout_default_step_ms", "conv_layout_default_speedup"))
        profile_tables(step, Path(cfg.out).parent, "default")
    return results
