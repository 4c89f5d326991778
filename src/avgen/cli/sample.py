"""`avgen sample experiment=<name> [ckpt=<path>] [mode=joint|v2a|a2v] [num=N]` (`make sample EXP=.. MODE=.. N=..`):
generated pairs of a trained run as mp4 files with audio (H.264 + AAC) and as arrays.

`joint` samples both modalities; `v2a` (`a2v`) generates the audio (video) for test-split clips by
reconstruction guidance, keeping the clip's own video (audio). Output: `outputs/<name>/samples_<mode>/`
(`sample_XXX.mp4`, `samples.npz` with the arrays in the store's representation, `conditions.json` naming the
test clips used). Writing mp4s needs pixel video and log-mel audio (Griffin-Lim); other representations
(latents) are written to samples.npz only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avgen.cli.args import pop, split_experiment
from avgen.evaluation.decoding import decode_pairs, decoders, write_videos
from avgen.evaluation.generation import conditional_pairs, generate_pairs, guidance_kwargs, sampler_kwargs
from avgen.experiment import cpu_processes, launch_ranks, load_trained
from avgen.utils.io import write_json
from avgen.utils.threads import free_cores, set_torch_threads

MODES = ("joint", "v2a", "a2v")


def run(overrides: list[str]) -> int:
    mode, overrides = pop(overrides, "mode")
    num, overrides = pop(overrides, "num")
    mode = mode or "joint"
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    experiment, overrides = split_experiment(overrides)
    ckpt, overrides = pop(overrides, "ckpt")
    cfg, dm, module, _, name = load_trained(experiment, overrides, ckpt)
    device, rank = launch_ranks(cfg)  # every device the run trained on draws its share (evaluation/sharding.py)
    set_torch_threads(cfg.threads or max(1, free_cores() // cpu_processes(cfg.trainer)))
    module.to(device)
    num = int(num) if num else cfg.evaluate.num_videos
    kwargs = sampler_kwargs(cfg)
    if mode == "joint":
        pairs = generate_pairs(
            module,
            dm,
            num=num,
            batch_size=cfg.evaluate.batch_size,
            seed=cfg.evaluate.seed,
            length_factor=cfg.evaluate.length_factor,
            **kwargs,
        )
    else:
        if not module.conditional:
            raise ValueError(f"{name} generates jointly only ({type(module).__name__}); use mode=joint")
        pairs = conditional_pairs(
            module, dm, "video" if mode == "v2a" else "audio", num, cfg.evaluate.seed, **guidance_kwargs(cfg), **kwargs
        )
    if rank != 0:  # rank 0 holds every sample too and writes them
        return 0
    out = Path(cfg.output_dir) / f"samples_{mode}"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "samples.npz", **pairs)
    video_dec, audio_dec = decoders(dm, cfg)
    write_videos(
        out, decode_pairs(pairs, video_dec, audio_dec), len(pairs["video"]), video_dec.fps, audio_dec.sample_rate
    )
    if mode != "joint":
        ids = dm.dataset("val").ids[: len(pairs["video"])]
        write_json(out / "conditions.json", {"mode": mode, "split": dm.splits["val"], "clips": ids})
    print(f"{len(pairs['video'])} {mode} samples -> {out}")
    return 0
