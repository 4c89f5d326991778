"""Generated pairs for evaluation and sampling: joint samples shaped like the store's clips, and conditional
pairs (video-to-audio, audio-to-video) for test-split clips by reconstruction guidance (CMMD Eq. 3)."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import numpy as np

from avgen.data.clips import clips, first_clips
from avgen.data.datamodule import AVDataModule, clip_shapes, draw_prompts
from avgen.evaluation.sharding import first_rank_value, gather, is_mine, mine, sum_counts
from avgen.sampling.cost import SamplingCost, steps_for_nfe
from avgen.utils.flops import counter
from avgen.utils.progress import progress


def sampler_kwargs(cfg: Any) -> dict[str, Any]:
    """The `sampler:` config group as keyword arguments of a module's `generate`; `evaluate.nfe` (when set)
    sets the steps that give about that many network evaluations with this solver (equal-NFE comparisons)."""
    nfe = cfg.evaluate.get("nfe")
    steps = steps_for_nfe(int(nfe), cfg.sampler.name) if nfe else cfg.sampler.steps
    return {
        "steps": steps,
        "sampler": cfg.sampler.name,
        "scheduler_kwargs": dict(cfg.sampler.scheduler_kwargs),
        "step_kwargs": dict(cfg.sampler.step_kwargs),
    }


def guidance_kwargs(cfg: Any) -> dict[str, Any]:
    """The reconstruction guidance of conditional generation (`sampler.guidance_scale`, `sampler.guidance_norm`)."""
    return {
        "guidance_scale": float(cfg.sampler.guidance_scale),
        "guidance_norm": str(cfg.sampler.get("guidance_norm", "balanced")),
    }


def generate_pairs(
    module,
    dm: AVDataModule,
    num: int,
    batch_size: int,
    seed: int,
    length_factor: int = 1,
    cost: SamplingCost | None = None,
    **generate_kwargs: Any,
) -> dict[str, np.ndarray]:
    """`num` unconditional joint samples shaped like the store's clips (times `length_factor` in time); text-
    conditioned modules get test-split captions as prompts (kept under "prompts"). Sample i is generated from
    seed + i (its noise and prompt), whatever the batch size: runs evaluated with one seed are paired.
    `cost`: a meter that counts every network evaluation (sampling/cost.py), and the FLOPs of the first batch
    (`cost.gflops_per_sample`)."""
    shapes = clip_shapes(dm, length_factor)
    prompted = module.needs_prompts
    done: dict[int, dict[str, np.ndarray]] = {}
    module.eval()
    before = Counter(cost.counts) if cost is not None else Counter()
    for _, start in progress(mine(range(0, num, batch_size)), "sampling (batches)"):  # this rank's share
        b = min(batch_size, num - start)
        seeds = list(range(seed + start, seed + start + b))
        prompts = {"prompts": draw_prompts(dm, b, seeds=seeds)} if prompted else {}
        with contextlib.ExitStack() as stack:
            if cost is not None:
                stack.enter_context(cost)
                flops = stack.enter_context(counter()) if start == 0 else None
            x = module.generate(
                {m: (b, *shape) for m, shape in shapes.items()}, seeds=seeds, **prompts, **generate_kwargs
            )
        if cost is not None and start == 0:
            cost.gflops_per_sample = flops.get_total_flops() / b / 1e9
        done[start] = {m: x[m].float().cpu().numpy() for m in ("video", "audio")}
        if prompted:
            done[start]["prompts"] = np.array(prompts["prompts"])
    if cost is not None:  # every rank's evaluations of this call; the FLOPs rank 0 measured on batch 0
        cost.counts = before + Counter(sum_counts(dict(cost.counts - before)))
        cost.gflops_per_sample = first_rank_value(cost.gflops_per_sample)
    return gather(done)


def conditional_pairs(
    module, dm: AVDataModule, known: str, num: int, seed: int, keep_reference: bool = False, **generate_kwargs: Any
) -> dict[str, np.ndarray]:
    """`num` pairs whose `known` modality is a test-split clip and whose other one is generated for it by
    reconstruction guidance (CMMD Eq. 3): known="video" is video-to-audio, known="audio" audio-to-video.
    `keep_reference`: also the test clips' own version of the generated modality, as "reference". The pair
    of test clip i is generated from seed + i: runs evaluated with one seed see the same conditions and noise."""
    other = "audio" if known == "video" else "video"
    module.eval()
    done: dict[int, dict[str, np.ndarray]] = {}
    seen = 0
    for k, batch in enumerate(dm.reference_loader()):  # the global batch grid; this rank generates its share
        if seen >= num:
            break
        known_clips = clips(batch)
        b = known_clips["video"].shape[0]
        first, seen = seen, seen + b
        if not is_mine(k):
            continue
        seeds = list(range(seed + first, seed + first + b))
        x = module.generate(
            {m: tuple(v.shape) for m, v in known_clips.items()},
            seeds=seeds,
            known={known: known_clips[known].to(module.device)},
            **generate_kwargs,
        )
        done[k] = {m: (known_clips[m] if m == known else x[m]).float().cpu().numpy() for m in ("video", "audio")}
        if keep_reference:
            done[k]["reference"] = known_clips[other].float().numpy()
    return {m: v[:num] for m, v in gather(done).items()}


def reference_pairs(dm: AVDataModule, num: int) -> dict[str, np.ndarray]:
    """The first `num` clips of the reference split (the data module's `val` split: the dataset's test split)."""
    return {m: x.float().numpy() for m, x in first_clips(dm.reference_loader(), num)[0].items()}
