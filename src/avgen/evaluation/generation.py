"""Generated pairs for evaluation and sampling: joint samples shaped like the store's clips, and conditional
pairs (video-to-audio, audio-to-video) for test-split clips by reconstruction guidance (CMMD Eq. 3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from avgen.data.clips import clips, first_clips
from avgen.data.datamodule import AVDataModule, clip_shapes, draw_prompts
from avgen.utils.progress import progress

def sampler_kwargs(cfg: Any) -> dict[str, Any]:
    """The `sampler:` config group as keyword arguments of a module's `generate`."""
    return {"steps": cfg.sampler.steps, "sampler": cfg.sampler.name,
            "scheduler_kwargs": dict(cfg.sampler.scheduler_kwargs), "step_kwargs": dict(cfg.sampler.step_kwargs)}


def guidance_kwargs(cfg: Any) -> dict[str, Any]:
    """The reconstruction guidance of conditional generation (`sampler.guidance_scale`, `sampler.guidance_norm`)."""
    return {"guidance_scale": float(cfg.sampler.guidance_scale),
            "guidance_norm": str(cfg.sampler.get("guidance_norm", "balanced"))}


def generate_pairs(module, dm: AVDataModule, num: int, batch_size: int, seed: int, length_factor: int = 1,
                   **generate_kwargs: Any) -> dict[str, np.ndarray]:
    """`num` unconditional joint samples shaped like the store's clips (times `length_factor` in time); text-
    conditioned modules get test-split captions as prompts (kept under "prompts"). Sample i is generated from
    seed + i (its noise and prompt), whatever the batch size: runs evaluated with one seed are paired."""
    shapes = clip_shapes(dm, length_factor)
    prompted = module.needs_prompts
    out: dict[str, list[np.ndarray]] = {"video": [], "audio": [], **({"prompts": []} if prompted else {})}
    module.eval()
    for start in progress(range(0, num, batch_size), "sampling (batches)"):
        b = min(batch_size, num - start)
        seeds = list(range(seed + start, seed + start + b))
        prompts = {"prompts": draw_prompts(dm, b, seeds=seeds)} if prompted else {}
        x = module.generate({m: (b, *shape) for m, shape in shapes.items()}, seeds=seeds, **prompts,
                            **generate_kwargs)
        for m in ("video", "audio"):
            out[m].append(x[m].float().cpu().numpy())
        if prompted:
            out["prompts"].append(np.array(prompts["prompts"]))
    return {m: np.concatenate(v) for m, v in out.items()}


def conditional_pairs(module, dm: AVDataModule, known: str, num: int, seed: int,
                      keep_reference: bool = False, **generate_kwargs: Any) -> dict[str, np.ndarray]:
    """`num` pairs whose `known` modality is a test-split clip and whose other one is generated for it by
    reconstruction guidance (CMMD Eq. 3): known="video" is video-to-audio, known="audio" audio-to-video.
    `keep_reference`: also the test clips' own version of the generated modality, as "reference". The pair
    of test clip i is generated from seed + i: runs evaluated with one seed see the same conditions and noise."""
    other = "audio" if known == "video" else "video"
    out: dict[str, list[np.ndarray]] = {"video": [], "audio": [], **({"reference": []} if keep_reference else {})}
    module.eval()
    done = 0
    for batch in dm.val_dataloader():
        known_clips = clips(batch)
        b = known_clips["video"].shape[0]
        seeds, done = list(range(seed + done, seed + done + b)), done + b
        x = module.generate({m: tuple(v.shape) for m, v in known_clips.items()}, seeds=seeds,
                            known={known: known_clips[known].to(module.device)},
                            **generate_kwargs)
        for m in ("video", "audio"):
            out[m].append((known_clips[m] if m == known else x[m]).float().cpu().numpy())
        if keep_reference:
            out["reference"].append(known_clips[other].float().numpy())
        if sum(len(v) for v in out["video"]) >= num:
            break
    return {m: np.concatenate(v)[:num] for m, v in out.items()}


def reference_pairs(dm: AVDataModule, num: int) -> dict[str, np.ndarray]:
    """The first `num` clips of the reference split (the data module's `val` split: the dataset's test split)."""
    return {m: x.float().numpy() for m, x in first_clips(dm.val_dataloader(), num)[0].items()}
