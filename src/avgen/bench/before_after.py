"""Before and after the GPU-efficiency changes, in one `avgen bench` run, every pair measured in turns.

Two changes touch every training step: the dual U-Net's video convolutions (Conv3d layers with (1, 3, 3) and
(3, 1, 1) kernels; on CUDA now 2-D convolutions over reshaped tensors, `models/unets/blocks.py`, same
parameters; on the CPU Conv3d still, because these figures found the per-frame layout no faster there) and
the optimizer update (multi-tensor `foreach`, now `fused`, configs/method). Figures:
- before_after_default_step_ms_{before,after}, before_after_default_speedup: one training step of the
  default experiment (its model, batch and optimizer; the method's `training_step`, backward, clipping, the
  update) on one of its own batches, before (Conv3d, foreach update) and after (this device's layout, fused
  update), in the joint-loss phase (no trainer: global step 0, before the contrastive term starts);
- conv_layout_unet_ms_per_fe_{conv3d,frame_convs} and conv_layout_unet_speedup: the paper-size U-Net (easy
  fusion) per function evaluation on a CMMD-shaped input, batch 1, as `unet_ms_per_fe_*`;
- conv_layout_default_step_ms_{conv3d,frame_convs} and conv_layout_default_speedup: the default step in
  each layout (fused update both);
- adam_ms_{foreach,fused} and adam_fused_speedup: one Adam update of the paper-size U-Net's parameters;
each speedup is before / after (conv3d / frame_convs, foreach / fused) of the medians, with the spread of
the per-round ratios. torch.profiler operator tables of three default steps before and after are written
next to the results (`profile_default_{before,after}.txt`, sorted by CPU time).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from avgen.bench.steps import default_experiment_step, in_layout
from avgen.config import load_config
from avgen.utils.io import write_text
from avgen.utils.timing import interleaved, medians


def speedup(times: dict[str, list[float]], before: str, after: str, name: str) -> dict[str, float]:
    """before / after of the medians, and the spread of the per-round ratios."""
    ratios = [a / b for a, b in zip(times[before], times[after])]
    return {
        name: statistics.median(times[before]) / statistics.median(times[after]),
        f"{name}_spread": max(ratios) - min(ratios),
    }


def profile_tables(steps: dict[str, Callable[[], None]], folder: Path, name: str, repeats: int = 3) -> None:
    from torch.profiler import ProfilerActivity, profile

    for label, step in steps.items():
        step()  # warm-up outside the profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                step()
        write_text(
            folder / f"profile_{name}_{label}.txt",  # every operator: read the top rows, search the rest
            prof.key_averages().table(sort_by="cpu_time_total", row_limit=-1),
        )


def adam_updates(net: torch.nn.Module) -> dict[str, Callable[[], None]]:
    """One Adam update of `net`'s parameters (fixed random gradients), foreach and fused."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizers = {kind: torch.optim.Adam(params, lr=1e-6, **{kind: True}) for kind in ("foreach", "fused")}
    return {kind: optimizer.step for kind, optimizer in optimizers.items()}


def bench_before_after(cfg: DictConfig) -> dict[str, float]:
    x = {"video": torch.randn(1, 18, 4, 16, 16), "audio": torch.randn(1, 80, 112)}
    unet_cfg = load_config("train", [f"model={cfg.unet_model}", "name=bench"]).model
    net = instantiate(unet_cfg, coupling="easy_fusion", video_channels=4, audio_channels=80).eval()
    t = torch.tensor([500])
    with torch.inference_mode():
        times = interleaved(
            {"conv3d": in_layout(lambda: net(x, t), False), "frame_convs": in_layout(lambda: net(x, t), True)},
            cfg.unet_repeats,
            warmup=1,
        )
    results = {
        **medians(times, "conv_layout_unet_ms_per_fe_"),
        **speedup(times, "conv3d", "frame_convs", "conv_layout_unet_speedup"),
    }
    times = interleaved(adam_updates(net), cfg.unet_repeats, warmup=1)
    results.update({**medians(times, "adam_ms_"), **speedup(times, "foreach", "fused", "adam_fused_speedup")})
    net = None  # free the paper-size U-Net before the default step is measured

    with tempfile.TemporaryDirectory() as tmp:
        common = [f"output_dir={tmp}", f"data.store={cfg.data.store}"]
        before = in_layout(
            default_experiment_step(cfg.overhead_experiment, [*common, "method.optimizer.fused=false"]), False
        )
        after = default_experiment_step(cfg.overhead_experiment, common)  # this device's defaults
        steps = {
            "before": before,
            "after": after,
            "conv3d": in_layout(after, False),
            "frame_convs": in_layout(after, True),
        }
        times = interleaved(steps, cfg.layout_steps, warmup=2)
        pairs = {
            "before_after_default_step_ms_": ("before", "after"),
            "conv_layout_default_step_ms_": ("conv3d", "frame_convs"),
        }
        for prefix, pair in pairs.items():
            results.update(medians({k: times[k] for k in pair}, prefix))
        results.update(
            {
                **speedup(times, "before", "after", "before_after_default_speedup"),
                **speedup(times, "conv3d", "frame_convs", "conv_layout_default_speedup"),
            }
        )
        profile_tables({"before": before, "after": after}, Path(cfg.out).parent, "default")
    return results
