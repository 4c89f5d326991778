"""Training memory of a model per GPU, computed from the model itself (docs/performance.md#memory).

`python -m avgen.bench.memory [model=dual_dit_xl] [preset=cmmd] [gpus=8] [batch=8]` (`make memory`) prints
the table for clips of a preparation preset (the paper's: 18 frames of SD-VAE latents, an 80 x 112 mel).

- parameters, gradients, Adam's two moments and the EMA copy: counted from the parameters (fp32 master
  weights under bf16-mixed, as Lightning keeps them; FSDP2 with bf16 compute keeps fp32 shards and gathers
  bf16 copies one block at a time, so a GPU holds 1/N of each plus the largest block unsharded in bf16, twice
  for the prefetch of the next);
- activations per sample: the bytes autograd saves for the backward in one forward of one sample in bf16,
  measured on the meta device (no memory, no compute) with `saved_tensors_hooks`. With activation
  checkpointing per block a forward keeps only each block's inputs, and the backward recomputes one block at a
  time: everything outside the blocks + depth x a block's inputs + one block's saved tensors. Each storage
  counts once; weights and N x N attention matrices are left out (saved_bytes). Attention's math path, which
  the meta device takes, saves other intermediates than the fused kernels real tensors run: on a small
  model the meta count is 5% under the CPU's (`tests/test_memory.py` holds them within 10%).
DDP also holds its gradient buckets (a second fp32 copy of the gradients, `gradient_as_bucket_view=False`).
Temporaries (attention workspaces, the allocator's fragmentation) are not in it: measured peaks run higher.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from hydra.utils import instantiate

from avgen.config import load_config

GB = 1024**3


def saved_bytes(fn, parameter_shapes: set[tuple[int, ...]] = frozenset()) -> int:
    """Bytes of the activations autograd saves while `fn()` runs: each storage once (views of one tensor
    count once); weights (a parameter's shape or its transpose) and N x N attention matrices left out (the
    meta device runs attention's math path; the fused kernels used in training save q, k, v, the output
    and a log-sum-exp, no matrix)."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        shape = tuple(t.shape)
        weight = shape in parameter_shapes or shape[::-1] in parameter_shapes
        attention = t.ndim >= 2 and shape[-1] == shape[-2] and shape[-1] >= 64
        if not (weight or attention):
            key = t.untyped_storage()._cdata
            storages[key] = max(storages.get(key, 0), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def activation_bytes(net, inputs: dict[str, torch.Tensor], t: torch.Tensor) -> dict[str, float]:
    """Per-sample activation bytes without and with checkpointing per block (see the module docstring)."""
    net.checkpointing = False
    weights = {tuple(p.shape) for p in net.parameters()}
    total = saved_bytes(lambda: net(inputs, t), weights)
    captured: dict[str, Any] = {}
    first = net.blocks[0]

    def keep_inputs(module, args):
        captured["args"] = args

    handle = first.register_forward_pre_hook(keep_inputs)
    saved_bytes(lambda: net(inputs, t), weights)
    handle.remove()
    h, c, angles = captured["args"]
    block = saved_bytes(lambda: first(h, c, angles), weights)
    depth = len(net.blocks)
    outside = total - depth * block
    block_inputs = sum(x.numel() * x.element_size() for x in [*h.values(), c])
    return {"plain": float(total), "checkpointed": float(outside + depth * block_inputs + block)}


def memory_table(
    model: str = "dual_dit_xl", preset: str = "cmmd", gpus: int = 8, batch: int = 8
) -> tuple[str, dict[str, Any]]:
    """(Markdown table, facts) of `model` (configs/model/) on clips of `preset` (configs/preset/)."""
    cfg = load_config("train", [f"model={model}"])
    with torch.device("meta"):
        net = instantiate(cfg.model).to(torch.bfloat16)
    n = sum(p.numel() for p in net.parameters())
    largest_block = max(sum(p.numel() for p in b.parameters()) for b in net.blocks)
    shapes = clip_shapes_of(preset)
    inputs = {m: torch.empty((1, *s), device="meta", dtype=torch.bfloat16) for m, s in shapes.items()}
    acts = activation_bytes(net, inputs, torch.zeros(1, device="meta", dtype=torch.bfloat16))
    state = {"parameters": 4 * n, "gradients": 4 * n, "optimizer (Adam)": 8 * n, "EMA": 4 * n}
    rows = []
    for strategy in ("DDP", f"FSDP x{gpus}"):
        sharded = strategy != "DDP"
        parts = {k: v / gpus if sharded else v for k, v in state.items()}
        # DDP: its gradient buckets (an fp32 copy of the gradients); FSDP: two blocks gathered in bf16
        parts["communication buffers"] = 2 * 2 * largest_block if sharded else 4 * n
        for ckpt in (False, True):
            per_sample = acts["checkpointed" if ckpt else "plain"]
            fixed = sum(parts.values())
            rows.append(
                {
                    "strategy": strategy,
                    "checkpointing": "on" if ckpt else "off",
                    **{k: v / GB for k, v in parts.items()},
                    "activations / sample": per_sample / GB,
                    f"total at batch {batch}": (fixed + batch * per_sample) / GB,
                    "max batch in 80 GB": max(0, int((80 * GB - fixed) // per_sample)),
                }
            )
    facts = {"parameters": n, "largest_block": largest_block, "shapes": shapes, "activations": acts}
    return _markdown(model, preset, facts, rows), facts


def clip_shapes_of(preset: str = "cmmd") -> dict[str, tuple[int, ...]]:
    """One training clip's shapes from a preparation preset (configs/preset/), without a store: frames from
    its clip length and each representation's rate; SD-VAE latents are 4 x size/8 x size/8 per frame."""
    from omegaconf import OmegaConf

    from avgen.config import repo_root
    from avgen.data import representations as reps

    preset_cfg = OmegaConf.load(repo_root() / "configs" / "preset" / f"{preset}.yaml")
    preset_cfg.vae_path = "unused"  # the encoder is never loaded here
    seconds = preset_cfg.windowing.clip_seconds
    shapes = {}
    for spec in preset_cfg.representations.values():
        cls = getattr(reps, spec._target_.rsplit(".", 1)[1])
        rep = cls(**{k: v for k, v in spec.items() if k != "_target_"})
        frames = rep.num_frames(seconds)
        if isinstance(rep, reps.VideoVAELatents):
            shapes["video"] = (frames, 4, rep.size // 8, rep.size // 8)
        elif isinstance(rep, reps.VideoPixels):
            shapes["video"] = (frames, 3, rep.size, rep.size)
        elif isinstance(rep, reps.AudioLogMel):
            shapes["audio"] = (rep.n_mels, frames)
    return shapes


def _markdown(model: str, preset: str, facts: dict, rows: list[dict]) -> str:
    header = list(rows[0])
    lines = [
        f"`{model}` on `{preset}`-preset clips {facts['shapes']}: {facts['parameters'] / 1e9:.3f}B parameters (largest "
        f"block {facts['largest_block'] / 1e6:.1f}M); GB per GPU, bf16-mixed, Adam, EMA on the GPU. "
        "Communication buffers: DDP's gradient buckets (an fp32 copy of the gradients); FSDP's two blocks "
        "gathered in bf16 (the one computing, the one prefetched).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import warnings

    warnings.filterwarnings("ignore", message="Mismatch dtype")  # bf16 weights meet fp32 rotary inputs
    args = dict(a.split("=", 1) for a in argv)
    text, _ = memory_table(
        args.get("model", "dual_dit_xl"), args.get("preset", "cmmd"), int(args.get("gpus", 8)),
        int(args.get("batch", 8)),
    )  # fmt: skip
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
