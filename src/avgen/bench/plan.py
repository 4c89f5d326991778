"""What a GPU run of an experiment costs before it starts (`make plan [EXP=a,b,...] [GPUS=8] [MFU=0.024]`): training and
evaluation FLOPs counted by torch's FLOP counter on the meta device (no memory, no compute), and the
GPU-hours they take at a stated model-FLOPs utilisation of a known GPU.

- training: forward + backward of the method's denoising loss per sample, times the samples the run sees
  (max_steps x per-GPU batch x GPUs); CMMD's contrastive steps also run the 2k negative pairs per batch of B
  (`negatives_per_step`, all B by default) from `contrastive_from_step` on;
- evaluation: `evaluate.num_samples` joint samples at the sampler's network evaluations per sample, plus the
  v2a / a2v pairs, whose reconstruction guidance adds a backward through the network per evaluation
  (counted as two more forwards).
Counted: matmuls, convolutions, attention (utils/flops.py); elementwise work, the optimizer and the
data pipeline are not, so wall-clock is longer than the FLOPs alone say.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from hydra.utils import instantiate

from avgen.bench.memory import clip_shapes_of
from avgen.callbacks.throughput import PEAK_TFLOPS
from avgen.config import load_config
from avgen.sampling.cost import CALLS_PER_STEP
from avgen.utils.flops import counter


def _meta_module(cfg):
    with torch.device("meta"):
        net = instantiate(cfg.model)
        return instantiate(cfg.method, net=net)


def loss_flops(module, shapes: dict[str, tuple[int, ...]], backward: bool) -> float:
    """FLOPs of the denoising loss of one sample (forward, and backward if asked)."""
    x0 = {m: torch.empty((1, *s), device="meta") for m, s in shapes.items() if m in module.modalities}
    noise = {m: torch.empty_like(x) for m, x in x0.items()}
    t = torch.zeros(1, device="meta")
    with counter() as flops:
        loss = module.denoising_loss(x0, t, noise).sum()
        if backward:
            loss.backward()
    return float(flops.get_total_flops())


# the paper-size U-Net's measured utilisation: a batch-16 bf16 training step on an H200 ran at 2.4% of the
# dense peak (docs/performance.md); small convolutional batches are far from peak, so plans use it by default
MEASURED_MFU = 0.024


def plan(
    experiment: str,
    preset: str = "cmmd",
    gpus: int = 8,
    device: str = "H100",
    mfu: float = MEASURED_MFU,
    overrides: tuple[str, ...] = (),
) -> dict:
    cfg = load_config("train", [*overrides, "method.init_from=null"], experiment=experiment)
    module = _meta_module(cfg)
    shapes = clip_shapes_of(preset)
    train_sample, forward = loss_flops(module, shapes, True), loss_flops(module, shapes, False)
    steps, batch = int(cfg.trainer.max_steps), int(cfg.data.batch_size)
    samples = steps * batch * gpus
    m = cfg.method
    if m.get("eta"):  # CMMD: 2k negative pairs per batch of B from contrastive_from_step on
        k = min(m.get("negatives_per_step") or batch, batch)
        contrastive = max(0, steps - int(m.get("contrastive_from_step") or 0))
        samples += contrastive * 2 * k * gpus
    training = train_sample * samples
    ev = cfg.evaluate
    nfe = int(cfg.sampler.steps) * CALLS_PER_STEP.get(cfg.sampler.name, 1)
    conditional = int(ev.num_video_to_audio) + int(ev.get("num_audio_to_video", 0))
    evaluation = forward * nfe * (int(ev.num_samples) + 3 * conditional)
    peak = PEAK_TFLOPS[device] * 1e12
    hours = lambda f: f / (peak * mfu) / 3600  # noqa: E731  GPU-hours at that utilisation
    return {
        "experiment": experiment,
        "parameters": sum(p.numel() for p in module.net.parameters()),
        "clip": shapes,
        "steps": steps,
        "batch_per_gpu": batch,
        "gpus": gpus,
        "train_gflops_per_sample": train_sample / 1e9,
        "train_pflops": training / 1e15,
        "train_gpu_hours": hours(training),
        "eval_nfe": nfe,
        "eval_pflops": evaluation / 1e15,
        "eval_gpu_hours": hours(evaluation),
        "assumed": f"{device} {PEAK_TFLOPS[device]:.0f} TFLOP/s dense bf16 at {mfu:.1%} MFU",
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    keys = ["experiment", "parameters", "steps", "batch_per_gpu", "gpus", "train_gflops_per_sample"]
    keys += ["train_pflops", "train_gpu_hours", "eval_nfe", "eval_pflops", "eval_gpu_hours"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = [f"{r[k] / 1e6:.1f}M" if k == "parameters" else f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k])
                 for k in keys]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", f"GPU-hours: {rows[0]['assumed']}; clips {rows[0]['clip']}."])


def main(argv: list[str]) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    args = dict(a.split("=", 1) for a in argv)
    experiments = args.get("experiment", "ncmmd_aistpp,cmmd_aistpp,ncmmd_continued_aistpp").split(",")
    gpus, mfu = int(args.get("gpus", 8)), float(args.get("mfu", MEASURED_MFU))
    rows = [plan(e, args.get("preset", "cmmd"), gpus, args.get("device", "H100"), mfu) for e in experiments]
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
