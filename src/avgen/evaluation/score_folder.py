"""Scoring a folder of media files with the protocol of avgen's runs (`avgen score`, docs/metrics.md#score):
samples released by other projects sit in the same table as ours.

A folder holds mp4 files, each with its audio track or with a `.wav` of the same stem beside it (the AV-Align
script's convention; the wav wins). Files are taken in name order; sample i of one folder pairs with sample
i of another only through the paired tables of `avgen compare`, never here. Video is decoded with OpenCV as
the AV-Align reference script does, audio with librosa (wav) or PyAV (the mp4's track).

`av_align` is computed exactly as its reference script (per file; `metrics.av_align.av_align_files` gives
the same numbers), with its interval over files and its chance floor; `av_align_one_to_one` is the variant.
Every other metric (fvd/kvd, fad, imagebind) needs a reference folder (`ref`) and goes through the same
`media_metrics` as a trained run's evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from avgen.evaluation.plan import AV_ALIGN, WEIGHTED
from avgen.metrics.av_align import REFERENCE_SAMPLE_RATE, read_media


@dataclass
class Folder:
    path: Path
    names: list[str]
    frames: list[np.ndarray]  # (F, H, W, 3) uint8 RGB each
    fps: float
    audio: list[np.ndarray] = field(repr=False)  # mono at REFERENCE_SAMPLE_RATE (22.05 kHz) each

    def audio_at(self, sample_rate: int) -> list[np.ndarray]:
        if sample_rate == REFERENCE_SAMPLE_RATE:
            return self.audio
        return [librosa.resample(a, orig_sr=REFERENCE_SAMPLE_RATE, target_sr=sample_rate) for a in self.audio]

    def pairs(self, sample_rate: int) -> dict[str, list[np.ndarray]]:
        """As evaluation holds decoded pairs: video (F, 3, H, W) float in [0, 1], audio at `sample_rate`, every
        clip cut to the shortest so they stack (the distances batch them)."""
        frames = min(len(f) for f in self.frames)
        sizes = {f.shape[1:] for f in self.frames}
        if len(sizes) > 1:
            raise ValueError(f"{self.path}: the videos differ in size ({sorted(sizes)}); distances need one size")
        audio = self.audio_at(sample_rate)
        samples = min(len(a) for a in audio)
        return {
            "video": [f[:frames].transpose(0, 3, 1, 2).astype(np.float32) / 255 for f in self.frames],
            "audio": [a[:samples] for a in audio],
        }


def read_folder(folder: str | Path, progress: bool = True) -> Folder:
    """Every mp4 of `folder` (name order) decoded as the AV-Align script reads media; one frame rate for all."""
    from avgen.utils.progress import progress as report_progress

    folder = Path(folder)
    files = sorted(folder.glob("*.mp4"))
    if not files:
        raise ValueError(f"{folder}: no .mp4 files to score (each mp4 with its audio track or a .wav beside it)")
    frames, audio, rates = [], [], {}
    for path in report_progress(files, f"reading {folder.name}") if progress else files:
        video, fps, wav = read_media(path)
        frames.append(video)
        audio.append(wav)
        rates.setdefault(round(fps, 3), path)
    if len(rates) > 1:
        listed = ", ".join(f"{r} fps: {p.name}" for r, p in rates.items())
        raise ValueError(f"{folder}: the files have different frame rates ({listed})")
    return Folder(folder, [p.stem for p in files], frames, float(next(iter(rates))), audio)


def score_folder(
    folder: str | Path,
    metrics: list[str],
    cfg: Any,
    reference: str | Path | None = None,
    sample_rate: int = 16000,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """(metrics.json content, per-file scores) of a folder's media; `cfg.evaluate` holds the metrics' settings
    (weights, seed, derangements) as for a trained run."""
    from avgen.evaluation.media_scores import media_metrics
    from avgen.metrics.calibrated import calibrated_av_align

    unknown = set(metrics) - {*AV_ALIGN, *WEIGHTED}
    if unknown:
        raise ValueError(f"metrics: unknown {sorted(unknown)}; choose from {', '.join([*AV_ALIGN, *WEIGHTED])}")
    weighted = [m for m in metrics if m in WEIGHTED]
    compared = [m for m in weighted if m != "desync"]  # DeSync scores each pair on its own
    if compared and reference is None:
        raise ValueError(f"{', '.join(compared)} compare with a reference set: give ref=<folder of real clips>")
    ev = cfg.evaluate
    generated = read_folder(folder)
    real = read_folder(reference) if reference is not None else None
    if real is not None and abs(real.fps - generated.fps) > 1e-3:
        raise ValueError(f"{reference} is at {real.fps} fps and {folder} at {generated.fps}: score like with like")
    out: dict[str, Any] = {
        "scored_folder": str(Path(folder).resolve()),
        "reference_folder": str(Path(reference).resolve()) if reference is not None else None,
        "num_samples": len(generated.names),
        "intervals": {},
        "calibration": {},
        "protocol": {},
    }
    per_file: dict[str, list[float]] = {"file": generated.names}
    common = {"num_samples": len(generated.names), "fps": generated.fps, "decoder": "OpenCV (video), librosa/PyAV"}
    for name in [n for n in AV_ALIGN if n in metrics]:
        mode = AV_ALIGN[name]
        # the reference mode at 22.05 kHz (no resampling after reading: exactly the script's onsets)
        rate = REFERENCE_SAMPLE_RATE if mode == "reference" else sample_rate
        score = calibrated_av_align(
            generated.frames,
            generated.audio_at(rate),
            generated.fps,
            rate,
            window=ev.av_align.window,
            seed=ev.seed,
            num_derangements=ev.synthetic.num_derangements,
            shift_seconds=ev.synthetic.shift_frames / generated.fps,
            reference=(real.frames, real.audio_at(rate)) if real is not None else None,
            mode=mode,
        )
        out[name], out["intervals"][name] = score.value, list(score.interval)
        out["calibration"][name] = score.calibration()
        out["protocol"][name] = {**common, "mode": mode, "sample_rate": rate}
        per_file[name] = [float(x) for x in score.columns["iou"]]
    if weighted:
        gen_pairs = generated.pairs(sample_rate)
        ref_pairs = real.pairs(sample_rate) if real is not None else gen_pairs
        frames = min(len(gen_pairs["video"][0]), len(ref_pairs["video"][0]))
        samples = min(len(gen_pairs["audio"][0]), len(ref_pairs["audio"][0]))
        cut = lambda p: {"video": [v[:frames] for v in p["video"]], "audio": [a[:samples] for a in p["audio"]]}  # noqa: E731
        scores = media_metrics(
            weighted, cut(gen_pairs), cut(ref_pairs), cfg, generated.fps, sample_rate, decoding=common
        )
        for key in ("intervals", "calibration", "protocol"):
            out[key].update(scores.pop(key, {}))
        out.update(scores)
    return out, per_file
