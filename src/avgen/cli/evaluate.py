"""Post-training evaluation: joint samples -> mp4s with audio + metrics.json (synthetic-data metrics)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from avgen.data.datamodule import AVDataModule
from avgen.metrics.synthetic import SyntheticProbe, synthetic_metrics, to_frames_01
from avgen.sampling.export import GriffinLim, write_sample


def rep_metadata(dm: AVDataModule) -> tuple[dict, dict]:
    """Store metadata of the video and the audio representation the data module loads."""
    names = dm.dataset("val").names
    return dm.store.rep(names["video"]).meta, dm.store.rep(names["audio"]).meta


def sampler_kwargs(cfg: Any) -> dict[str, Any]:
    """The `sampler:` config group as keyword arguments of a module's `generate`."""
    return {"steps": cfg.sampler.steps, "sampler": cfg.sampler.name,
            "scheduler_kwargs": dict(cfg.sampler.scheduler_kwargs), "step_kwargs": dict(cfg.sampler.step_kwargs)}


def generate_pairs(module, dm: AVDataModule, num: int, batch_size: int, seed: int, length_factor: int = 1,
                   **generate_kwargs: Any) -> dict[str, np.ndarray]:
    """`num` unconditional joint samples shaped like the store's clips (times `length_factor` in time)."""
    video_meta, audio_meta = rep_metadata(dm)
    v_shape, a_shape = list(video_meta["shape"]), list(audio_meta["shape"])
    v_shape[video_meta["time_axis"]] = video_meta["clip_frames"] * length_factor
    a_shape[audio_meta["time_axis"]] = audio_meta["clip_frames"] * length_factor
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[np.ndarray]] = {"video": [], "audio": []}
    module.eval()
    for start in tqdm(range(0, num, batch_size), desc="sampling", leave=False):
        b = min(batch_size, num - start)
        x = module.generate({"video": (b, *v_shape), "audio": (b, *a_shape)}, generator=g, **generate_kwargs)
        for m in out:
            out[m].append(x[m].float().cpu().numpy())
    return {m: np.concatenate(v) for m, v in out.items()}


def evaluate_synthetic(module, dm: AVDataModule, out_dir: Path, cfg: Any) -> dict[str, Any]:
    """Sample, write mp4s, score with the exact synthetic metrics, write metrics.json; returns the metrics."""
    video_meta, audio_meta = rep_metadata(dm)
    draw = dict(num=cfg.evaluate.num_samples, batch_size=cfg.evaluate.batch_size, seed=cfg.evaluate.seed,
                length_factor=cfg.evaluate.length_factor, **sampler_kwargs(cfg))
    t = time.perf_counter()
    pairs = generate_pairs(module, dm, **draw)
    sampling_seconds = time.perf_counter() - t
    samples_dir = out_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    np.savez(samples_dir / "samples.npz", **pairs)
    vocoder = GriffinLim.from_metadata(audio_meta)
    fps = 1.0 / video_meta["seconds_per_frame"]
    for i in range(min(cfg.evaluate.num_videos, len(pairs["video"]))):
        write_sample(samples_dir / f"sample_{i:03d}.mp4", pairs["video"][i], pairs["audio"][i], fps, vocoder)
    probe = SyntheticProbe.from_metadata(video_meta, audio_meta, num_classes=len(dm.store.label_names))
    metrics = synthetic_metrics(probe, [to_frames_01(v) for v in pairs["video"]], list(pairs["audio"]))
    if hasattr(module, "guidance_scales"):  # MMDisCo: the same bases and seed without guidance ("no joint")
        plain = generate_pairs(module, dm, **draw, scales={m: 0.0 for m in module.guidance_scales})
        no_joint = synthetic_metrics(probe, [to_frames_01(v) for v in plain["video"]], list(plain["audio"]))
        metrics.update({f"no_joint_{k}": v for k, v in no_joint.items() if k.startswith(("temporal", "semantic"))})
    calls = cfg.sampler.steps * -(-cfg.evaluate.num_samples // cfg.evaluate.batch_size)  # denoiser calls
    metrics.update({"sampler": cfg.sampler.name, "sampler_steps": cfg.sampler.steps, "num_samples": len(pairs["video"]),
                    "sampling_seconds": sampling_seconds, "ms_per_fe": 1000 * sampling_seconds / calls})
    if cfg.evaluate.num_video_to_audio:
        metrics.update(_video_to_audio(module, dm, probe, cfg))
    return metrics


def conditional_pairs(module, dm: AVDataModule, known: str, num: int, seed: int, guidance_scale: float,
                      **generate_kwargs: Any) -> dict[str, np.ndarray]:
    """`num` pairs whose `known` modality is a test-split clip and whose other one is generated for it by
    reconstruction guidance (CMMD Eq. 3): known="video" is video-to-audio, known="audio" audio-to-video."""
    from avgen.methods.cmmd.negatives import centre

    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[np.ndarray]] = {"video": [], "audio": []}
    module.eval()
    for batch in dm.val_dataloader():
        clips = {m: centre(batch[m], m, batch["margin"][m]) for m in ("video", "audio")}
        x = module.generate({m: tuple(v.shape) for m, v in clips.items()}, generator=g,
                            known={known: clips[known].to(module.device)}, guidance_scale=guidance_scale,
                            **generate_kwargs)
        for m in out:
            out[m].append((clips[m] if m == known else x[m]).float().cpu().numpy())
        if sum(len(v) for v in out["video"]) >= num:
            break
    return {m: np.concatenate(v)[:num] for m, v in out.items()}


def _video_to_audio(module, dm: AVDataModule, probe: SyntheticProbe, cfg: Any) -> dict[str, float]:
    """Audio generated for test-split videos by reconstruction guidance, scored against those videos."""
    pairs = conditional_pairs(module, dm, "video", cfg.evaluate.num_video_to_audio, cfg.evaluate.seed,
                              cfg.sampler.guidance_scale, **sampler_kwargs(cfg))
    scores = synthetic_metrics(probe, [to_frames_01(v) for v in pairs["video"]], list(pairs["audio"]))
    return {f"v2a_{k}": v for k, v in scores.items() if k.startswith(("temporal", "semantic"))}
