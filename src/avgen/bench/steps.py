"""The measured steps that `avgen bench` and `avgen gpu-check` share: the paper-size dual U-Net's training
step (what MFU is reported for), and the default experiment's step without a Trainer (its model, batch and
optimizer through the method's own `training_step`)."""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from omegaconf import DictConfig, open_dict

import avgen.models.unets.blocks as blocks
from avgen.config import load_config
from avgen.experiment import build


def training_step_fn(cfg: DictConfig, device: str, batch: int, factorised: bool, compiled: bool):
    """(one training step of the paper-size U-Net as a function, the FLOPs of one eager step): the default
    method's denoising loss (configs/train.yaml), backward and its fused Adam update."""
    from torch.utils.flop_counter import FlopCounterMode

    from avgen.config import build_part

    torch.manual_seed(0)
    train_cfg = load_config("train", [f"model={cfg.unet.model}", "name=gpu_check"])
    net = build_part(train_cfg.model, "model", video_channels=4, audio_channels=80).to(device)
    module = build_part(train_cfg.method, "method", net=net).to(device)
    model = torch.compile(net, mode=cfg.unet.compile_mode) if compiled else net
    frames, mel_frames = (18, 112) if device == "cuda" else (4, 16)  # CMMD shapes; tiny for a CPU rehearsal
    x0 = {
        "video": torch.randn(batch, frames, 4, 16, 16, device=device),
        "audio": torch.randn(batch, 80, mel_frames, device=device),
    }
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, fused=cfg.unet.fused_adam)  # as training (configs/method)

    def step(m) -> None:
        module.net = m  # the eager or the compiled network behind the same loss
        t = torch.randint(0, 1000, (batch,), device=device)
        # the layout this figure is for; bf16 autocast on CUDA, float32 on the CPU
        with blocks.conv_layout(factorised), torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = module.denoising_loss(x0, t, {k: torch.randn_like(x) for k, x in x0.items()}).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step(net)
    return (lambda: step(model)), counter.get_total_flops()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def warm_up(step, device: str, calls: int) -> float:
    """Seconds of `calls` untimed calls (compilation, allocations, cuDNN autotuning happen here)."""
    start = time.perf_counter()
    for _ in range(calls):
        step()
    sync(device)
    return time.perf_counter() - start


def unet_step(
    cfg: DictConfig, device: str, batch: int, factorised: bool, compiled: bool, repeats: int
) -> dict[str, float]:
    """Median train-step time of the paper-size U-Net, samples/s and MFU (FLOPs of one eager step)."""
    step, flops = training_step_fn(cfg, device, batch, factorised, compiled)
    warmup = warm_up(step, device, 3)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    out = {
        "step_ms": 1000 * seconds,
        "step_ms_spread": 1000 * (max(times) - min(times)),
        "samples_per_s": batch / seconds,
        "tflops_per_step": flops / 1e12,
        "mfu": flops / seconds / (cfg.peak_tflops * 1e12),
        "warmup_s": warmup,
    }
    if device == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return out


def bare_training_step(
    module, optimizer, batch, step: int, clip: float | None, autocast: torch.autocast | None = None
) -> None:
    """The method's training step (under `autocast`, as Lightning's mixed precision runs it), backward,
    gradient clipping and the optimizer step, without a Trainer."""
    with warnings.catch_warnings(), autocast or contextlib.nullcontext():
        warnings.simplefilter("ignore")  # self.log without a trainer is a no-op that warns
        loss = module.training_step(batch, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
    optimizer.step()


def bare_parts(train_cfg: DictConfig, device: str = "cpu", compile_options: dict | None = None):
    """(data module set up for fit, module on `device` in train mode, its optimizer) for a loop without a
    Trainer; the networks torch.compile'd with `compile_options` when given."""
    dm, module, _ = build(train_cfg)
    dm.setup("fit")
    module.to(device)
    if compile_options is not None:
        module.compile_networks(**compile_options)
    optimizer = module.configure_optimizers()  # after the move: fused updates need the parameters in place
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    module.train()
    return dm, module, optimizer


def in_layout(fn: Callable[[], object], factorised: bool | None) -> Callable[[], object]:
    def call() -> object:
        with blocks.conv_layout(factorised):
            return fn()

    return call


def default_experiment_step(
    experiment: str, overrides: list[str], device: str = "cpu", compile_options: dict | None = None
) -> Callable[[], None]:
    """One bare training step of `experiment` on a fixed batch of its own data, as a function: on `device`
    (CUDA: bf16 autocast, as the GPU trainer preset), its networks torch.compile'd with `compile_options`."""
    from lightning.fabric.utilities.apply_func import move_data_to_device

    train_cfg = load_config("train", overrides, experiment=experiment)
    with open_dict(train_cfg):
        del train_cfg.callbacks["ema"]
    torch.manual_seed(0)
    dm, module, optimizer = bare_parts(train_cfg, device, compile_options)
    batch = move_data_to_device(next(iter(dm.train_dataloader())), device)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if device == "cuda" else None
    return lambda: bare_training_step(module, optimizer, batch, 0, train_cfg.trainer.gradient_clip_val, autocast)
