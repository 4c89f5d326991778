"""Post-training evaluation (`avgen train`'s last step and `avgen eval`): joint samples -> decoded media ->
mp4s with audio + metrics.json, with the metrics of `evaluate.metrics` against the reference split (SPEC §5)."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from avgen.data.datamodule import AVDataModule, clip_shapes, draw_prompts, rep_metadata
from avgen.metrics.synthetic import SyntheticProbe, synthetic_metrics, to_frames_01
from avgen.sampling.decode import AudioDecoder, VideoDecoder
from avgen.sampling.export import GriffinLim, frames_to_uint8, write_sample


def sampler_kwargs(cfg: Any) -> dict[str, Any]:
    """The `sampler:` config group as keyword arguments of a module's `generate`."""
    return {"steps": cfg.sampler.steps, "sampler": cfg.sampler.name,
            "scheduler_kwargs": dict(cfg.sampler.scheduler_kwargs), "step_kwargs": dict(cfg.sampler.step_kwargs)}


def generate_pairs(module, dm: AVDataModule, num: int, batch_size: int, seed: int, length_factor: int = 1,
                   **generate_kwargs: Any) -> dict[str, np.ndarray]:
    """`num` unconditional joint samples shaped like the store's clips (times `length_factor` in time); text-
    conditioned modules get test-split captions as prompts (kept under "prompts")."""
    shapes = clip_shapes(dm, length_factor)
    g = torch.Generator().manual_seed(seed)
    prompted = getattr(module, "needs_prompts", False)
    out: dict[str, list[np.ndarray]] = {"video": [], "audio": [], **({"prompts": []} if prompted else {})}
    module.eval()
    for start in tqdm(range(0, num, batch_size), desc="sampling", leave=False):
        b = min(batch_size, num - start)
        prompts = {"prompts": draw_prompts(dm, b, g)} if prompted else {}
        x = module.generate({m: (b, *shape) for m, shape in shapes.items()}, generator=g, **prompts, **generate_kwargs)
        for m in ("video", "audio"):
            out[m].append(x[m].float().cpu().numpy())
        if prompted:
            out["prompts"].append(np.array(prompts["prompts"]))
    return {m: np.concatenate(v) for m, v in out.items()}


WEIGHTED = {"fvd": ("weights",), "fad": ("weights",), "imagebind": ("video", "audio")}


def metric_plan(cfg: Any, dataset: str) -> list[str]:
    """The metrics to compute (`evaluate.metrics`); `auto` = the exact metrics on the synthetic store, else
    AV-Align, beat hit rate on AIST++ and every weighted metric whose local weights are configured. A listed
    weighted metric without weights is an error here, before any sampling."""
    names = cfg.evaluate.metrics
    if names == "auto":
        if dataset == "synthetic":
            return ["synthetic"]
        names = ["av_align", *(["beats"] if dataset == "aistpp" else []),
                 *(m for m, keys in WEIGHTED.items() if all(cfg.evaluate[m][k] for k in keys))]
    unknown = set(names) - {"synthetic", "av_align", "beats", *WEIGHTED}
    if unknown:
        raise ValueError(f"evaluate.metrics: unknown {sorted(unknown)}; choose from synthetic, av_align, beats, "
                         f"{', '.join(WEIGHTED)}")
    for m in set(names) & set(WEIGHTED):
        missing = [f"evaluate.{m}.{k}" for k in WEIGHTED[m] if not cfg.evaluate[m][k]]
        if missing:
            raise ValueError(f"evaluate.metrics lists {m}, which needs local weights: set {', '.join(missing)}")
    if "synthetic" in names and dataset != "synthetic":
        raise ValueError(f"evaluate.metrics: the synthetic metrics need the synthetic store, not {dataset}")
    return list(names)


def build_vocoder(cfg: Any, audio_meta: dict):
    """`evaluate.vocoder`: griffin_lim (default) or melgan (a trained `vocoder_melgan_<dataset>` checkpoint)."""
    if audio_meta["class"] != "AudioLogMel":
        return None
    if cfg.kind == "griffin_lim":
        return GriffinLim.from_metadata(audio_meta, n_iter=cfg.n_iter)
    if cfg.kind == "melgan":
        from avgen.methods.vocoder.module import load_vocoder

        return load_vocoder(cfg.checkpoint, audio_meta)
    raise ValueError(f"evaluate.vocoder.kind must be griffin_lim or melgan, got {cfg.kind!r}")


def decoders(dm: AVDataModule, cfg: Any) -> tuple[VideoDecoder, AudioDecoder]:
    video_meta, audio_meta = rep_metadata(dm)
    return VideoDecoder(video_meta), AudioDecoder(audio_meta, build_vocoder(cfg.evaluate.vocoder, audio_meta))


def decode_pairs(pairs: dict[str, np.ndarray], video: VideoDecoder, audio: AudioDecoder) -> dict[str, list]:
    return {"video": [video(v) for v in tqdm(pairs["video"], desc="decoding video", leave=False)],
            "audio": [audio(a) for a in tqdm(pairs["audio"], desc="decoding audio", leave=False)]}


def write_videos(out_dir: Path, media: dict[str, list], num: int, fps: float, sample_rate: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(min(num, len(media["video"]))), desc="writing mp4", leave=False):
        write_sample(out_dir / f"sample_{i:03d}.mp4", media["video"][i], media["audio"][i], fps, sample_rate)


def reference_pairs(dm: AVDataModule, num: int) -> dict[str, np.ndarray]:
    """The first `num` clips of the reference split (the data module's `val` split: the dataset's test split)."""
    from avgen.methods.cmmd.negatives import centre

    out: dict[str, list[np.ndarray]] = {"video": [], "audio": []}
    for batch in dm.val_dataloader():
        for m in out:
            out[m].append(centre(batch[m], m, batch["margin"][m]).float().numpy())
        if sum(len(v) for v in out["video"]) >= num:
            break
    return {m: np.concatenate(v)[:num] for m, v in out.items()}


def media_metrics(names: list[str], generated: dict[str, list], reference: dict[str, list], cfg: Any,
                  fps: float, sample_rate: int, prompts: list[str] | None = None) -> dict[str, float]:
    """The weight-free and weighted media metrics of decoded generated pairs against decoded reference pairs
    (and, with `prompts` and a text encoder, ImageBind's text-video and text-audio scores)."""
    from avgen.metrics.av_align import AVAlign
    from avgen.metrics.extractors import load_audio_embedding, load_imagebind, load_video_features
    from avgen.metrics.frechet import FeatureDistances
    from avgen.metrics.imagebind import ImageBindScore

    ev, out = cfg.evaluate, {}
    stack = lambda xs: torch.from_numpy(np.stack(xs))  # noqa: E731
    if "av_align" in names:
        metric = AVAlign(fps, sample_rate, window=ev.av_align.window)
        metric.update([frames_to_uint8(v) for v in generated["video"]], generated["audio"])
        out["av_align"] = metric.compute()
    if "fvd" in names:
        extractor = load_video_features(ev.fvd.weights, ev.fvd.num_frames, ev.fvd.size, key="evaluate.fvd.weights")
        out.update(_distances(FeatureDistances(extractor, "fvd"), stack(reference["video"]), stack(generated["video"])))
    if "fad" in names:
        extractor = load_audio_embedding(ev.fad.weights, sample_rate, ev.fad.model_rate, ev.fad.window_seconds,
                                         key="evaluate.fad.weights")
        metric = FeatureDistances(extractor, "fad", per_sample=ev.fad.window_seconds is not None)
        out.update({k: v for k, v in _distances(metric, stack(reference["audio"]), stack(generated["audio"])).items()
                    if not k.startswith("kad")})
    if "imagebind" in names:
        encoders = load_imagebind({"video": ev.imagebind.video, "audio": ev.imagebind.audio, "text": ev.imagebind.text})
        metric = ImageBindScore(encoders, sample_rate, ev.imagebind.model_rate)
        text = list(prompts) if prompts is not None and "text" in encoders else None
        metric.update(video=stack(generated["video"]), audio=stack(generated["audio"]), text=text)
        out.update(metric.compute())
    return {k: float(v) for k, v in out.items()}


def _distances(metric, reference: torch.Tensor, generated: torch.Tensor, batch_size: int = 16) -> dict:
    for x, real in ((reference, True), (generated, False)):
        for chunk in x.split(batch_size):
            metric.update(chunk, real=real)
    return metric.compute()


def evaluate(module, dm: AVDataModule, out_dir: Path, cfg: Any) -> dict[str, Any]:
    """Sample, write mp4s, score with the planned metrics against the reference split; returns the metrics."""
    dataset = dm.store.metadata["dataset"]
    names = metric_plan(cfg, dataset)
    video_dec, audio_dec = decoders(dm, cfg)
    draw = dict(num=cfg.evaluate.num_samples, batch_size=cfg.evaluate.batch_size, seed=cfg.evaluate.seed,
                length_factor=cfg.evaluate.length_factor, **sampler_kwargs(cfg))
    t = time.perf_counter()
    pairs = generate_pairs(module, dm, **draw)
    sampling_seconds = time.perf_counter() - t
    samples_dir = out_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    np.savez(samples_dir / "samples.npz", **pairs)
    media = decode_pairs(pairs, video_dec, audio_dec)
    write_videos(samples_dir, media, cfg.evaluate.num_videos, video_dec.fps, audio_dec.sample_rate)
    calls = cfg.sampler.steps * -(-cfg.evaluate.num_samples // cfg.evaluate.batch_size)  # denoiser calls
    metrics: dict[str, Any] = {"sampler": cfg.sampler.name, "sampler_steps": cfg.sampler.steps,
                               "num_samples": len(pairs["video"]), "sampling_seconds": sampling_seconds,
                               "ms_per_fe": 1000 * sampling_seconds / calls, "metrics_reference": f"{dataset} val split"}
    if "synthetic" in names:
        metrics.update(_synthetic(module, dm, pairs, draw))
    media_names = [n for n in names if n not in ("synthetic", "beats")]
    if media_names:
        reference = decode_pairs(reference_pairs(dm, cfg.evaluate.num_samples), video_dec, audio_dec)
        metrics.update(media_metrics(media_names, media, reference, cfg, video_dec.fps, audio_dec.sample_rate,
                                     prompts=[str(p) for p in pairs["prompts"]] if "prompts" in pairs else None))
    if cfg.evaluate.num_video_to_audio and "known" in inspect.signature(module.generate).parameters:
        metrics.update(_video_to_audio(module, dm, cfg, names, audio_dec))
    return metrics


def synthetic_probe(dm: AVDataModule) -> SyntheticProbe:
    return SyntheticProbe.from_metadata(*rep_metadata(dm), num_classes=len(dm.store.label_names))


def _synthetic(module, dm: AVDataModule, pairs: dict[str, np.ndarray], draw: dict) -> dict[str, Any]:
    """The exact synthetic metrics; for MMDisCo also of the same bases and seed without guidance (no joint)."""
    probe = synthetic_probe(dm)
    metrics = synthetic_metrics(probe, [to_frames_01(v) for v in pairs["video"]], list(pairs["audio"]))
    if hasattr(module, "guidance_scales"):
        plain = generate_pairs(module, dm, **draw, scales={m: 0.0 for m in module.guidance_scales})
        no_joint = synthetic_metrics(probe, [to_frames_01(v) for v in plain["video"]], list(plain["audio"]))
        metrics.update({f"no_joint_{k}": v for k, v in no_joint.items() if k.startswith(("temporal", "semantic"))})
    return metrics


def conditional_pairs(module, dm: AVDataModule, known: str, num: int, seed: int, guidance_scale: float,
                      keep_reference: bool = False, **generate_kwargs: Any) -> dict[str, np.ndarray]:
    """`num` pairs whose `known` modality is a test-split clip and whose other one is generated for it by
    reconstruction guidance (CMMD Eq. 3): known="video" is video-to-audio, known="audio" audio-to-video.
    `keep_reference`: also the test clips' own version of the generated modality, as "reference"."""
    from avgen.methods.cmmd.negatives import centre

    g = torch.Generator().manual_seed(seed)
    other = "audio" if known == "video" else "video"
    out: dict[str, list[np.ndarray]] = {"video": [], "audio": [], **({"reference": []} if keep_reference else {})}
    module.eval()
    for batch in dm.val_dataloader():
        clips = {m: centre(batch[m], m, batch["margin"][m]) for m in ("video", "audio")}
        x = module.generate({m: tuple(v.shape) for m, v in clips.items()}, generator=g,
                            known={known: clips[known].to(module.device)}, guidance_scale=guidance_scale,
                            **generate_kwargs)
        for m in ("video", "audio"):
            out[m].append((clips[m] if m == known else x[m]).float().cpu().numpy())
        if keep_reference:
            out["reference"].append(clips[other].float().numpy())
        if sum(len(v) for v in out["video"]) >= num:
            break
    return {m: np.concatenate(v)[:num] for m, v in out.items()}


def _video_to_audio(module, dm: AVDataModule, cfg: Any, names: list[str], audio_dec: AudioDecoder) -> dict[str, float]:
    """Audio generated for test-split videos by reconstruction guidance, scored against those videos (synthetic)
    and, for the beat hit rate, against the test clips' own audio."""
    pairs = conditional_pairs(module, dm, "video", cfg.evaluate.num_video_to_audio, cfg.evaluate.seed,
                              cfg.sampler.guidance_scale, keep_reference="beats" in names, **sampler_kwargs(cfg))
    out: dict[str, float] = {}
    if "synthetic" in names:
        scores = synthetic_metrics(synthetic_probe(dm), [to_frames_01(v) for v in pairs["video"]], list(pairs["audio"]))
        out.update({f"v2a_{k}": v for k, v in scores.items() if k.startswith(("temporal", "semantic"))})
    if "beats" in names:
        from avgen.metrics.beats import BeatHitRate

        metric = BeatHitRate(audio_dec.sample_rate)
        metric.update([audio_dec(a) for a in pairs["audio"]], [audio_dec(a) for a in pairs["reference"]])
        out.update({f"v2a_{k}": float(v) for k, v in metric.compute().items()})
    return out
