"""Scoring a trained module (`avgen train`'s last step and `avgen eval`): joint samples -> decoded media ->
mp4s with audio, then the metrics of `evaluate.metrics` against the reference split (docs/metrics.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig

from avgen.data.datamodule import AVDataModule, rep_metadata
from avgen.decoding.decode import AudioDecoder
from avgen.evaluation.calibration import NESTED, ceilings, merge, paired_report, synthetic_report
from avgen.evaluation.decoding import decode_pairs, decoders, decoding_protocol, write_videos
from avgen.evaluation.generation import (
    conditional_pairs,
    generate_pairs,
    guidance_kwargs,
    reference_pairs,
    sampler_kwargs,
)
from avgen.evaluation.media_scores import audio_classifier_metrics, media_metrics, prefixed
from avgen.evaluation.plan import metric_plan
from avgen.evaluation.report import dataset_name, method_name, variant
from avgen.metrics.synthetic import Protocol, SyntheticProbe
from avgen.sampling.cost import SamplingCost
from avgen.utils.io import write_json
from avgen.utils.process import peak_memory_gb


def score(cfg: DictConfig, module: L.LightningModule, dm: Any, out_dir: Path) -> dict[str, Any]:
    """Samples and metrics of a trained module (joint models: single-modal bases are scored through the
    MMDisCo runs that join them), with what identifies the run in a comparison."""
    dataset = dataset_name(dm)
    wanted = cfg.evaluate.num_samples > 0 or any(conditional_counts(module, cfg).values())
    metrics = evaluate(module, dm, out_dir, cfg) if module.joint and wanted else {}
    metrics.update(module.extra_scores(dm))  # a model's own quality figures (a vocoder's)
    metrics.update(
        {
            "dataset": dataset,
            "method": method_name(cfg),
            "variant": variant(cfg),
            "modalities": list(module.modalities),
            "parameters": sum(p.numel() for p in module.net.parameters()),
        }
    )
    return metrics


def evaluate(module, dm: AVDataModule, out_dir: Path, cfg: Any) -> dict[str, Any]:
    """Sample, write mp4s, score with the planned metrics against the reference split; returns the metrics.
    With `evaluate.num_samples=0` only the conditional pairs (v2a, a2v) are generated and scored."""
    dataset = dm.store.metadata["dataset"]
    names = metric_plan(cfg, dataset)
    if "desync" in names:
        desync_lengths(rep_metadata(dm)[0], cfg.evaluate, conditional_counts(module, cfg)["video"] > 0)
    video_dec, audio_dec = decoders(dm, cfg)
    metrics: dict[str, Any] = {"metrics_reference": f"{dataset} {dm.splits['val']} split"}
    per_sample: dict[str, dict] = {}
    if cfg.evaluate.num_samples > 0:
        merge(metrics, _joint(module, dm, out_dir, cfg, names, video_dec, audio_dec, per_sample))
    counts = conditional_counts(module, cfg)
    if any(counts.values()):
        metrics.update(guidance_kwargs(cfg))
    for known, num in counts.items():
        if num:
            scores, pairs = _conditional(module, dm, cfg, names, (video_dec, audio_dec), per_sample, known, num)
            merge(metrics, scores)
            _conditional_videos(dm, out_dir / "samples", cfg, (video_dec, audio_dec), pairs, known)
    if per_sample:  # per-pair counts: paired differences between runs (avgen compare)
        write_json(
            out_dir / "per_sample.json", {k: {c: v.tolist() for c, v in cols.items()} for k, cols in per_sample.items()}
        )
    return metrics


def desync_lengths(video_meta: dict, ev: Any, v2a: bool) -> None:
    """DeSync's clips are long enough (4.8 s), checked before sampling: the joint samples (the stored clip
    length times `evaluate.length_factor`) and the test clips v2a conditions on."""
    from avgen.metrics.desync import check_seconds

    seconds = video_meta["clip_frames"] * video_meta["seconds_per_frame"]
    if ev.num_samples > 0:
        check_seconds(seconds * ev.length_factor, "the joint samples (the stored clips x evaluate.length_factor)")
    if v2a:
        check_seconds(seconds, "the test clips v2a conditions on (evaluate.num_video_to_audio=0 skips them)")


def _conditional_videos(dm: AVDataModule, samples_dir: Path, cfg: Any, decs: tuple, pairs: dict, known: str) -> None:
    """The first `evaluate.num_videos` conditional pairs as `v2a_<i>.mp4` / `a2v_<i>.mp4`, beside the test
    clips they were conditioned on (`reference_<i>.mp4`, the clip with its own sound): what the HTML
    comparison puts side by side."""
    num = min(cfg.evaluate.num_videos, len(pairs["video"]))
    if num == 0:
        return
    video_dec, audio_dec = decs
    rate = (video_dec.fps, audio_dec.sample_rate)
    media = decode_pairs({m: pairs[m][:num] for m in ("video", "audio")}, video_dec, audio_dec)
    write_videos(samples_dir, media, num, *rate, prefix="v2a" if known == "video" else "a2v")
    if not all((samples_dir / f"reference_{i:03d}.mp4").is_file() for i in range(num)):
        real = decode_pairs(reference_pairs(dm, num), video_dec, audio_dec)  # the clips the conditions came from
        write_videos(samples_dir, real, num, *rate, prefix="reference")


def conditional_counts(module, cfg: Any) -> dict[str, int]:
    """{known modality: pairs to generate}: v2a (video known) and a2v (audio known), if the method can."""
    if not module.conditional:
        return {"video": 0, "audio": 0}
    return {"video": cfg.evaluate.num_video_to_audio, "audio": cfg.evaluate.get("num_audio_to_video", 0)}


def _joint(
    module, dm: AVDataModule, out_dir: Path, cfg: Any, names: list[str], video_dec, audio_dec, per_sample: dict
) -> dict[str, Any]:
    """Joint samples: generated, written as mp4s, scored (synthetic metrics, media metrics)."""
    draw = dict(
        num=cfg.evaluate.num_samples,
        batch_size=cfg.evaluate.batch_size,
        seed=cfg.evaluate.seed,
        length_factor=cfg.evaluate.length_factor,
        **sampler_kwargs(cfg),
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t, cost = time.perf_counter(), SamplingCost()
    pairs = generate_pairs(module, dm, **draw, cost=cost)
    sampling_seconds = time.perf_counter() - t
    peak = peak_memory_gb()
    samples_dir = out_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    np.savez(samples_dir / "samples.npz", **pairs)
    media = decode_pairs(pairs, video_dec, audio_dec)
    write_videos(samples_dir, media, cfg.evaluate.num_videos, video_dec.fps, audio_dec.sample_rate)
    num = len(pairs["video"])
    counted = cost.per_sample(num)  # nfe and each guidance pass, per sample (sampling/cost.py)
    calls = counted["nfe"] * num / cfg.evaluate.batch_size  # denoiser calls, batches of batch_size
    metrics: dict[str, Any] = {
        "sampler": cfg.sampler.name,
        "sampler_steps": draw["steps"],
        "num_samples": num,
        "sampling_seconds": sampling_seconds,
        "ms_per_fe": 1000 * sampling_seconds / calls,
        "peak_memory_gb": peak,
        "samples_per_s": num / sampling_seconds,
        **{f"{k}_per_sample": v for k, v in counted.items()},
        "sampling_gflops_per_sample": cost.gflops_per_sample,
    }
    features: dict[str, dict] = {}  # FD/KD feature sets: paired distance differences between runs (avgen compare)
    if "synthetic" in names:
        merge(metrics, _synthetic(module, dm, pairs, draw, cfg, per_sample, features))
    media_names = [n for n in names if n not in ("synthetic", "beats")]
    if media_names:
        reference = decode_pairs(reference_pairs(dm, cfg.evaluate.num_samples), video_dec, audio_dec)
        merge(
            metrics,
            media_metrics(
                media_names,
                media,
                reference,
                cfg,
                video_dec.fps,
                audio_dec.sample_rate,
                prompts=[str(p) for p in pairs["prompts"]] if "prompts" in pairs else None,
                decoding=decoding_protocol(cfg, dm, audio_dec),
                features=features,
            ),
        )
    if features:
        torch.save(features, out_dir / "distance_features.pt")
    return metrics


def synthetic_probe(dm: AVDataModule) -> SyntheticProbe:
    return SyntheticProbe.from_metadata(*rep_metadata(dm), num_classes=len(dm.store.label_names))


def synthetic_protocol(cfg: Any) -> Protocol:
    return Protocol(**cfg.evaluate.synthetic)


def _ceiling(dm: AVDataModule, probe: SyntheticProbe, num: int, protocol: Protocol) -> dict[str, float]:
    return ceilings(probe, reference_pairs(dm, num), protocol)


def _synthetic(
    module,
    dm: AVDataModule,
    pairs: dict[str, np.ndarray],
    draw: dict,
    cfg: Any,
    per_sample: dict,
    features: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """The exact synthetic metrics with intervals, floors and ceilings, and each modality's fidelity
    (`evaluate.representation_fd`); for MMDisCo also of the same bases, seeds and noise without guidance (no
    joint), and the paired difference guided - no joint."""
    from avgen.metrics.representation_fd import representation_distances

    probe, protocol, seed = synthetic_probe(dm), synthetic_protocol(cfg), cfg.evaluate.seed
    reference = f"{dm.store.metadata['dataset']} {dm.splits['val']} split"
    real = reference_pairs(dm, len(pairs["video"]))  # read once: the ceiling's pairs and the fidelity's reference
    ceiling = ceilings(probe, real, protocol)
    metrics, per_sample["synthetic"] = synthetic_report(probe, pairs, protocol, seed, ceiling, reference)
    fidelity = cfg.evaluate.get("representation_fd", False)
    if fidelity:
        merge(metrics, representation_distances(pairs, real, seed, features=features))
    baseline = module.baseline_settings()
    if baseline is not None:  # the method's no-coupling baseline from the same weights, seeds and noise
        cost = SamplingCost()
        plain = generate_pairs(module, dm, **draw, **baseline, cost=cost)
        no_joint, per_sample["no_joint_synthetic"] = synthetic_report(
            probe, plain, protocol, seed, ceiling, reference, prefix="no_joint_"
        )
        merge(metrics, no_joint)  # and what its samples cost (no guidance passes)
        if fidelity:
            merge(metrics, representation_distances(plain, real, seed, prefix="no_joint_"))
        metrics.update({f"no_joint_{k}_per_sample": v for k, v in cost.per_sample(len(plain["video"])).items()})
        metrics["no_joint_sampling_gflops_per_sample"] = cost.gflops_per_sample
        merge(metrics, paired_report(per_sample["synthetic"], per_sample["no_joint_synthetic"], "guided - no joint"))
    return metrics


def _conditional(
    module,
    dm: AVDataModule,
    cfg: Any,
    names: list[str],
    decs: tuple[Any, AudioDecoder],
    per_sample: dict,
    known: str,
    num: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The other modality generated for test-split clips of `known` by reconstruction guidance (v2a: audio
    for videos, a2v: video for audio), scored against those clips (synthetic), for v2a's beat hit rate
    against the test clips' own audio, and for v2a's DeSync with the test clips' video; (the scores, the pairs)."""
    video_dec, audio_dec = decs
    v2a = known == "video"
    prefix = "v2a_" if v2a else "a2v_"
    pairs = conditional_pairs(
        module,
        dm,
        known,
        num,
        cfg.evaluate.seed,
        keep_reference=v2a and bool({"beats", "panns", "passt", "vggish", "imagebind"} & set(names)),
        **guidance_kwargs(cfg),
        **sampler_kwargs(cfg),
    )
    out: dict[str, Any] = {}
    if "synthetic" in names:
        probe, protocol = synthetic_probe(dm), synthetic_protocol(cfg)
        reference = f"{dm.store.metadata['dataset']} {dm.splits['val']} split (its {known}s as conditions)"
        report, per_sample[f"{prefix}synthetic"] = synthetic_report(
            probe,
            pairs,
            protocol,
            cfg.evaluate.seed,
            _ceiling(dm, probe, len(pairs["video"]), protocol),
            reference,
            prefix=prefix,
        )
        merge(out, report)
    if "beats" in names and v2a:  # the generated audio's beats against the test clips' own audio's
        from avgen.metrics.calibrated import calibrated_beat_hit_rate

        generated, real = audio_dec.batch(pairs["audio"]), audio_dec.batch(pairs["reference"])
        fps = rep_metadata(dm)[0]["fps"]
        section: dict[str, Any] = {"intervals": {}, "calibration": {}, "protocol": {}}
        decoding = decoding_protocol(cfg, dm, audio_dec)
        for tolerance in (0.1, 0.5):
            name = f"v2a_beat_hit_rate_{int(round(tolerance * 1000))}ms"
            score = calibrated_beat_hit_rate(
                generated,
                real,
                audio_dec.sample_rate,
                tolerance,
                seed=cfg.evaluate.seed,
                num_derangements=cfg.evaluate.synthetic.num_derangements,
                shift_seconds=cfg.evaluate.synthetic.shift_frames / fps,
            )
            out[name] = score.value
            section["intervals"][name] = list(score.interval)
            section["calibration"][name] = score.calibration()
            section["protocol"][name] = {
                "num_samples": len(generated),
                "tolerance_seconds": tolerance,
                "shift_seconds": cfg.evaluate.synthetic.shift_frames / fps,
                "extractor": "librosa beat_track",
                **decoding,
            }
        merge(out, section)
    audio_names = [n for n in ("panns", "passt", "vggish") if n in names]
    if audio_names and v2a:  # av-benchmark's setting: each generated audio against its video's own audio
        generated, real = audio_dec.batch(pairs["audio"]), audio_dec.batch(pairs["reference"])
        common = {"num_samples": len(generated), "num_reference": len(real), "sample_rate": audio_dec.sample_rate}
        common.update(decoding_protocol(cfg, dm, audio_dec))
        section = audio_classifier_metrics(
            audio_names, list(generated), list(real), cfg, audio_dec.sample_rate, common, paired=True
        )
        merge(out, prefixed(section, prefix))
    if v2a and set(V2A_MEDIA) & set(names):  # generated audio on the test videos: how MMAudio reports both
        merge(out, v2a_media(names, pairs, video_dec, audio_dec, cfg, decoding_protocol(cfg, dm, audio_dec)))
    return out, pairs


V2A_MEDIA = ("desync", "imagebind")  # media metrics scored on v2a pairs, as the published v2a tables do


def v2a_media(
    names: list[str], pairs: dict[str, np.ndarray], video_dec, audio_dec: AudioDecoder, cfg: Any, decoding=None
) -> dict:
    """`v2a_desync` and `v2a_ib_av` of video-to-audio pairs: the test clips' video with the audio generated
    for it (av-benchmark's DeSync and IB-Score, the setting MMAudio reports them in), with intervals, floors
    and provenance; the ImageBind ceiling from the test clips' own audio (`pairs["reference"]`)."""
    media = decode_pairs({m: pairs[m] for m in ("video", "audio")}, video_dec, audio_dec)
    real = dict(media, audio=list(audio_dec.batch(pairs["reference"]))) if "reference" in pairs else media
    scores = media_metrics(
        [n for n in V2A_MEDIA if n in names], media, real, cfg, video_dec.fps, audio_dec.sample_rate, decoding=decoding
    )
    for entry in scores.get("protocol", {}).values():
        entry["video"] = "the test clips' (the conditions)"
    return prefixed({k: v for k, v in scores.items() if k in ("desync", "ib_av", *NESTED)}, "v2a_")
