"""The media metrics of decoded pairs (docs/metrics.md): AV-Align, FVD/KVD, FAD, the audio classifiers' FD,
KL and IS (PANNs, PaSST, VGGish, AudioCLIP), ImageBind, CLAP and DeSync, each with its interval, floor and
ceiling where it has them, and its provenance. Used by a run's evaluation (`evaluation/scoring.py`) and by
`avgen score` on any folder of media."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from avgen.decoding.export import frames_to_uint8
from avgen.evaluation.calibration import NESTED, merge
from avgen.evaluation.plan import AV_ALIGN
from avgen.metrics.stats import calibration_entry


def media_metrics(
    names: list[str],
    generated: dict[str, list],
    reference: dict[str, list],
    cfg: Any,
    fps: float,
    sample_rate: int,
    prompts: list[str] | None = None,
    decoding: dict[str, Any] | None = None,
    features: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """The weight-free and weighted media metrics of decoded generated pairs against decoded reference pairs
    (and, with `prompts`, ImageBind's text-video and text-audio scores given its text encoder, and the CLAP
    score; PANNs, PaSST, VGGish and AudioCLIP metrics through `audio_classifier_metrics`, unpaired: no KL): each
    value with its interval, the alignment scores with their floors and ceiling, and every metric's provenance
    (`protocol[<metric>]`: extractor file and SHA-256, rates, sizes, samples, scale, decoder). `features`, if
    given, receives the distance metrics' feature sets by metric prefix."""
    from avgen.metrics.av_align import REFERENCE_SAMPLE_RATE
    from avgen.metrics.calibrated import calibrated_av_align
    from avgen.metrics.extractors import load_audio_embedding, load_imagebind, load_video_features
    from avgen.metrics.frechet import FeatureDistances
    from avgen.metrics.imagebind import ImageBindScore
    from avgen.weights import fingerprint

    ev, seed = cfg.evaluate, cfg.evaluate.seed
    out: dict[str, Any] = {"intervals": {}, "calibration": {}, "protocol": {}}
    stack = lambda xs: torch.from_numpy(np.stack(xs))  # noqa: E731
    common = {
        "num_samples": len(generated["video"]),
        "num_reference": len(reference["video"]),
        "fps": fps,
        "sample_rate": sample_rate,
        **(decoding or {}),
    }
    for name in [n for n in AV_ALIGN if n in names]:
        mode = AV_ALIGN[name]
        score = calibrated_av_align(
            [frames_to_uint8(v) for v in generated["video"]],
            generated["audio"],
            fps,
            sample_rate,
            window=ev.av_align.window,
            seed=seed,
            num_derangements=ev.synthetic.num_derangements,
            shift_seconds=ev.synthetic.shift_frames / fps,
            reference=([frames_to_uint8(v) for v in reference["video"]], reference["audio"]),
            mode=mode,
        )
        out[name] = score.value
        out["intervals"][name] = list(score.interval)
        out["calibration"][name] = score.calibration()
        out["protocol"][name] = {
            **common,
            "mode": mode,
            "shift_seconds": ev.synthetic.shift_frames / fps,
            "frames": "the generated frames as uint8 RGB (before mp4 encoding)",
            **(
                {
                    "reference": "TempoTokens av_align.py",
                    "onset_sample_rate": REFERENCE_SAMPLE_RATE,
                    "window": f"strict, one frame ({1.0 / fps:.4f} s), many-to-one",
                    "extractor": "librosa onsets at 22.05 kHz + OpenCV Farneback flow, strict local maxima",
                }
                if mode == "reference"
                else {
                    "window": ev.av_align.window or 1.0 / fps,
                    "extractor": "librosa onsets + OpenCV Farneback flow peaks (padded, >10% of max), one-to-one",
                }
            ),
        }
    if "fvd" in names:
        extractor = load_video_features(ev.fvd.weights, ev.fvd.num_frames, ev.fvd.size, key="evaluate.fvd.weights")
        metric = FeatureDistances(extractor, "fvd", seed=seed)
        values = _distances(metric, stack(reference["video"]), stack(generated["video"]), features)
        provenance = {
            **common,
            "extractor": fingerprint(ev.fvd.weights),
            "num_frames": ev.fvd.num_frames,
            "resolution": ev.fvd.size,
            "scale": 1,
        }
        _split_distances(out, values, {"fvd": provenance, "kvd": provenance})
    if "fad" in names:
        extractor = load_audio_embedding(
            ev.fad.weights, sample_rate, ev.fad.model_rate, ev.fad.window_seconds, key="evaluate.fad.weights"
        )
        metric = FeatureDistances(extractor, "fad", per_sample=ev.fad.window_seconds is not None, seed=seed)
        values = {
            k: v
            for k, v in _distances(metric, stack(reference["audio"]), stack(generated["audio"]), features).items()
            if not k.startswith("kad")
        }
        provenance = {
            **common,
            "extractor": fingerprint(ev.fad.weights),
            "model_rate": ev.fad.model_rate,
            "window_seconds": ev.fad.window_seconds,
            "scale": 1,
        }
        _split_distances(out, values, {"fad": provenance, "fad_per_sample": provenance})
    merge(
        out, audio_classifier_metrics(names, generated["audio"], reference["audio"], cfg, sample_rate, common, features)
    )
    if "imagebind" in names:
        paths = {"video": ev.imagebind.video, "audio": ev.imagebind.audio, "text": ev.imagebind.text}
        encoders = load_imagebind(paths)
        metric = ImageBindScore(encoders, sample_rate, ev.imagebind.model_rate)
        text = list(prompts) if prompts is not None and "text" in encoders else None
        metric.update(video=stack(generated["video"]), audio=stack(generated["audio"]), text=text)
        ceiling = ImageBindScore(
            {m: e for m, e in encoders.items() if m != "text"}, sample_rate, ev.imagebind.model_rate
        )
        ceiling.update(video=stack(reference["video"]), audio=stack(reference["audio"]))
        real = {k: float(v) for k, v in ceiling.compute().items()}
        for name, value in metric.compute().items():
            out[name] = float(value)
        for name, cal in metric.calibrated(seed, ev.synthetic.num_derangements).items():
            out["intervals"][name] = list(cal["interval"])
            out["calibration"][name] = calibration_entry(
                out[name], cal.get("floor"), cal.get("floor_std"), ceiling=real.get(name)
            )
            out["protocol"][name] = {
                **common,
                "model_rate": ev.imagebind.model_rate,
                "scale": 1,
                "extractor": {m: fingerprint(p) for m, p in paths.items() if p},
            }
    if "desync" in names:
        _desync(out, generated, ev, fps, sample_rate, common)
    if "clap" in names:
        merge(out, clap_metrics(generated["audio"], prompts, cfg, sample_rate, common))
    return {k: v for k, v in out.items() if v != {}}


def clap_metrics(
    audio: list, prompts: list[str] | None, cfg: Any, sample_rate: int, common: dict[str, Any]
) -> dict[str, Any]:
    """`clap_score`: each generated clip's audio against its own prompt (metrics/clap_score.py), with its interval,
    its derangement floor and provenance. A run without prompts gets no value, only a protocol note saying why."""
    from avgen.metrics.clap_score import MODEL_RATE, REFERENCE, calibrated_clap_score, load_clap_text_audio
    from avgen.weights import fingerprint

    ev = cfg.evaluate
    if prompts is None:
        note = "not computed: the run has no prompts (CLAP score scores each clip's audio against its own prompt)"
        return {"protocol": {"clap_score": {**common, "skipped": note}}}
    if len(prompts) != len(audio):
        raise ValueError(f"clap_score: {len(prompts)} prompts for {len(audio)} generated clips")
    scorer = load_clap_text_audio(ev.clap.weights, sample_rate, ev.clap.audio_length)
    wave = torch.from_numpy(np.stack(audio)).float()
    cal = calibrated_clap_score(
        scorer.audio(wave), scorer.text(prompts), ev.seed, num_derangements=ev.synthetic.num_derangements
    )
    window = scorer.window / scorer.model_rate
    return {
        "clap_score": cal["value"],
        "intervals": {"clap_score": cal["interval"]},
        "calibration": {"clap_score": calibration_entry(cal["value"], cal["floor"], cal["floor_std"])},
        "protocol": {
            "clap_score": {
                **common,
                "extractor": fingerprint(ev.clap.weights),
                "model_rate": scorer.model_rate,
                "crop": f"each clip's mean removed, resampled to {scorer.model_rate} Hz, its first "
                f"{ev.clap.audio_length} s, repeat-padded to the model's {window:g} s window",
                "text": "RoBERTa tokens padded and truncated to 77, one prompt per clip (its own)",
                "scale": 1,
                "reference": REFERENCE,
                "reference_rate": MODEL_RATE,
            }
        },
    }


def audio_classifier_metrics(
    names: list[str],
    generated: list,
    reference: list,
    cfg: Any,
    sample_rate: int,
    common: dict[str, Any],
    features: dict[str, dict] | None = None,
    paired: bool = False,
) -> dict[str, Any]:
    """av-benchmark's PANNs, PaSST and VGGish metrics of generated against reference waves at `sample_rate`:
    `fd_panns`, `is_panns` (+ `is_panns_std`), `fd_passt`, `is_passt` (+ `is_passt_std`), `fd_vggish`, and with
    `paired` (generated clip i made for reference clip i, as v2a) `kl_panns` and `kl_passt`; and MM-Diffusion's /
    JavisBench's FAD on AudioCLIP (`fad_audioclip`, `fad_audioclip_x1e4`; joint only in the references); each
    with its interval and provenance."""
    from avgen.metrics.extractors import load_panns, load_passt, load_vggish
    from avgen.metrics.frechet import FeatureDistances
    from avgen.weights import fingerprint

    ev, seed = cfg.evaluate, cfg.evaluate.seed
    out: dict[str, Any] = {"intervals": {}, "calibration": {}, "protocol": {}}
    stack = lambda xs: torch.from_numpy(np.stack(xs)).float()  # noqa: E731
    classifiers = {  # av-benchmark's audio classifiers: loader, what each clip shows it, the names it reports
        "panns": (load_panns, "the whole clip (one output per clip)", "FD-PANN, KL-PANNS-softmax, ISC-PANNS"),
        "passt": (
            load_passt,
            "the first 10 s of each clip, zero-padded to 10 s if shorter (one output per clip)",
            "FD-PASST, KL-PASST-softmax, ISC-PASST",
        ),
    }
    for name, (load, window, reported) in classifiers.items():
        if name not in names:
            continue
        net = load(ev[name].weights, sample_rate, key=f"evaluate.{name}.weights")
        provenance = {
            **common,
            "extractor": fingerprint(ev[name].weights),
            "model_rate": net.net.sample_rate,
            "window": window,
            "scale": 1,
            "reference": f"av-benchmark ({reported})",
        }
        _classifier_scores(out, name, net, generated, reference, ev[name], provenance, seed, features, paired)
    if "audioclip" in names:
        audioclip_distances(out, generated, reference, cfg, sample_rate, common, features)
    if "vggish" in names:
        vggish = load_vggish(ev.vggish.weights, sample_rate, key="evaluate.vggish.weights")
        metric = FeatureDistances(vggish, "fd_vggish", seed=seed)
        values = _distances(metric, stack(reference), stack(generated), features)
        provenance = {
            **common,
            "extractor": fingerprint(ev.vggish.weights),
            "model_rate": 16000,
            "window": "0.96 s examples every 0.96 s, pooled over clips (no PCA)",
            "scale": 1,
            "reference": "av-benchmark (FD-VGG)",
        }
        _split_distances(out, {k: v for k, v in values.items() if not k.startswith("kd_")}, {"fd_vggish": provenance})
    return {k: v for k, v in out.items() if v != {}}


def audioclip_distances(
    out: dict[str, Any],
    generated: list,
    reference: list,
    cfg: Any,
    sample_rate: int,
    common: dict[str, Any],
    features: dict[str, dict] | None = None,
) -> None:
    """`fad_audioclip` (scale 1) and `fad_audioclip_x1e4` (the same distance times 1e4, the scale MM-Diffusion and
    JavisBench print as "FAD") into `out`: the Fréchet distance of AudioCLIP's 1024-d audio embeddings, one per
    clip, generated against reference, with the jackknife interval and provenance; and
    `fad_audioclip_x1e4_reference_estimator`, the references' own estimator on the same embeddings, x1e4
    (metrics/audioclip_fad.py)."""
    from avgen.metrics.audioclip_fad import REPORTED_SCALE, reference_estimator
    from avgen.metrics.extractors import load_audioclip
    from avgen.metrics.frechet import FeatureDistances
    from avgen.weights import fingerprint

    ev = cfg.evaluate
    section = ev.audioclip
    stack = lambda xs: torch.from_numpy(np.stack(xs)).float()  # noqa: E731
    extractor = load_audioclip(
        section.weights,
        sample_rate,
        section.model_rate,
        section.seconds,
        section.batch_norm,
        key="evaluate.audioclip.weights",
    )
    metric = FeatureDistances(extractor, "fad_audioclip", seed=ev.seed)
    values = _distances(metric, stack(reference), stack(generated), features)
    length = "the whole clip" if section.seconds is None else f"the first {section.seconds} s, zero-padded if shorter"
    provenance = {
        **common,
        "extractor": fingerprint(section.weights),
        "model_rate": section.model_rate,
        "window": f"{length} (one 1024-d embedding per clip, before AudioCLIP's L2 normalisation)",
        "amplitude": "waves in [-1, 1] as the references feed them (the network's int16-range scaling applied to them)",
        "batch_norm": section.batch_norm,
        "scale": 1,
        "reference": "MM-Diffusion evaluator.py / JavisBench metrics.py (fad = frechet_distance(fake, real) * 10000)",
    }
    _split_distances(out, {k: v for k, v in values.items() if not k.startswith("kad_")}, {"fad_audioclip": provenance})
    reported = "fad_audioclip_x1e4"
    out[reported] = out["fad_audioclip"] * REPORTED_SCALE
    if "fad_audioclip" in out["intervals"]:
        out["intervals"][reported] = [x * REPORTED_SCALE for x in out["intervals"]["fad_audioclip"]]
    out["protocol"][reported] = {**provenance, "scale": REPORTED_SCALE}
    feats, estimated = metric.features(), f"{reported}_reference_estimator"
    out[estimated] = reference_estimator(feats["generated"][:, 0], feats["reference"][:, 0])
    out["protocol"][estimated] = {
        **provenance,
        "scale": REPORTED_SCALE,
        "estimator": "the references' code on the same embeddings: SVD square roots with singular values under "
        "1e-10 left unrooted (above the Fréchet distance where the embeddings are small), float64, no interval",
    }


def _classifier_scores(
    out: dict[str, Any],
    tag: str,
    extractor,
    generated: list,
    reference: list,
    section: Any,
    provenance: dict[str, Any],
    seed: int,
    features: dict[str, dict] | None,
    paired: bool,
) -> None:
    """An AudioSet classifier's av-benchmark scores into `out`: `fd_<tag>` of its embeddings, `is_<tag>`
    (+ `_std`) of its logits over `section.is_splits` shuffled splits, and with `paired` `kl_<tag>`."""
    from avgen.metrics.classifier_scores import inception_scores, kl_per_pair
    from avgen.metrics.frechet import FeatureDistances
    from avgen.metrics.stats import bootstrap_interval

    stack = lambda xs: torch.from_numpy(np.stack(xs)).float()  # noqa: E731
    real, fake = extractor(stack(reference)), extractor(stack(generated))
    fd, is_, kl = f"fd_{tag}", f"is_{tag}", f"kl_{tag}"
    metric = FeatureDistances(lambda f: f, fd, seed=seed)
    values = _distances(metric, real["embedding"], fake["embedding"], features)
    _split_distances(out, {k: v for k, v in values.items() if not k.startswith("kd_")}, {fd: provenance})
    splits = min(section.is_splits, len(generated))  # av-benchmark: 10; one clip per split below that
    scores = inception_scores(fake["logits"], splits, seed=section.is_seed)
    out[is_], out[f"{is_}_std"] = float(scores.mean()), float(scores.std())
    out["intervals"][is_] = _mean_interval(scores)
    out["protocol"][is_] = {**provenance, "splits": splits, "shuffle_seed": section.is_seed}
    if paired:
        per_pair = kl_per_pair(fake["logits"], real["logits"]).numpy()  # (N,) KL(reference || generated)
        out[kl] = float(per_pair.mean())
        out["intervals"][kl] = list(bootstrap_interval({"kl": per_pair}, lambda s: s["kl"] / len(per_pair), seed=seed))
        out["protocol"][kl] = {**provenance, "direction": "KL(reference || generated), softmax of logits"}


def _mean_interval(scores: np.ndarray, level: float = 0.95) -> list[float]:
    """Student-t interval of the mean of per-split scores (disjoint splits of the clips); a point with one split."""
    from scipy import stats

    mean = float(scores.mean())
    if len(scores) < 2:
        return [mean, mean]
    half = float(stats.t.ppf((1 + level) / 2, len(scores) - 1) * scores.std(ddof=1) / np.sqrt(len(scores)))
    return [mean - half, mean + half]


def prefixed(section: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A metrics section with every metric name (values and the nested intervals, protocol...) prefixed."""
    return {
        k if k in NESTED else prefix + k: {prefix + n: e for n, e in v.items()} if k in NESTED else v
        for k, v in section.items()
    }


def _desync(out: dict[str, Any], generated: dict[str, list], ev: Any, fps: float, sample_rate: int, common: dict):
    """DeSync of the generated pairs (metrics/desync.py) with its bootstrap interval over clips."""
    from avgen.metrics import desync as ds
    from avgen.metrics.extractors import require_file
    from avgen.metrics.stats import bootstrap_interval, safe_div
    from avgen.models import synchformer as sf
    from avgen.weights import fingerprint

    model = sf.load_synchformer(require_file(ev.desync.weights, "evaluate.desync.weights"))
    if torch.cuda.is_available():
        model = model.cuda()
    per_clip = ds.DeSync(model).per_clip(generated["video"], generated["audio"], fps, sample_rate)
    columns = {"offset": per_clip, "clips": np.ones_like(per_clip)}
    out["desync"] = ds.desync(per_clip)
    out["intervals"]["desync"] = list(
        bootstrap_interval(columns, lambda s: safe_div(s["offset"], s["clips"]), seed=ev.seed)
    )
    out["protocol"]["desync"] = {
        **{k: v for k, v in common.items() if k != "num_reference"},  # no reference set
        "extractor": fingerprint(ev.desync.weights),
        "model_fps": sf.VIDEO_FPS,
        "model_rate": sf.SAMPLE_RATE,
        "resolution": sf.IMAGE_SIZE,
        "windows": f"first and last {ds.WINDOW_SECONDS:.1f} s ({sf.NUM_SEGMENTS} segments of 0.64 s, step 0.32 s)",
        "offsets": "21 classes, -2.0 to +2.0 s; mean |offset| of the argmax class",
        "reference": "av-benchmark av_bench/evaluate.py (DeSync)",
        "scale": 1,
    }


def _split_distances(out: dict[str, Any], values: dict[str, Any], provenance: dict[str, dict]) -> None:
    """FeatureDistances' outputs into values, intervals (`<name>_interval`) and provenance per metric."""
    for k, v in values.items():
        if k.endswith("_interval"):
            out["intervals"][k[: -len("_interval")]] = [float(x) for x in v]
        else:
            out[k] = float(v)
    for name, entry in provenance.items():
        if name in out:
            out["protocol"][name] = entry


def _distances(
    metric, reference: torch.Tensor, generated: torch.Tensor, features: dict | None, batch_size: int = 16
) -> dict:
    """The metric's values; its reference and generated features into `features[prefix]` (kept for paired
    differences between runs)."""
    for x, real in ((reference, True), (generated, False)):
        for chunk in x.split(batch_size):
            metric.update(chunk, real=real)
    if features is not None:
        features[metric.prefix] = {k: v.float().cpu() for k, v in metric.features().items()}
    return metric.compute()
