"""Store arrays -> frames and waveforms (the configured vocoder for mels) -> mp4 files with audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avgen.data.datamodule import AVDataModule, rep_metadata
from avgen.decoding.decode import AudioDecoder, VideoDecoder, mel_vocoder
from avgen.decoding.export import write_sample
from avgen.utils.progress import progress


def build_vocoder(cfg: Any, audio_meta: dict):
    """`evaluate.vocoder.kind`: auto (default), griffin_lim, griffin_lim_librosa, band_synth
    (`decoding.decode.mel_vocoder`) or melgan (a trained `vocoder_melgan_<dataset>` checkpoint)."""
    if audio_meta["class"] != "AudioLogMel":
        return None
    if cfg.kind == "melgan":
        from avgen.vocoder.module import load_vocoder

        return load_vocoder(cfg.checkpoint, audio_meta)
    return mel_vocoder(audio_meta, cfg.kind, cfg.n_iter)


def decoders(dm: AVDataModule, cfg: Any) -> tuple[VideoDecoder, AudioDecoder]:
    video_meta, audio_meta = rep_metadata(dm)
    return VideoDecoder(video_meta), AudioDecoder(audio_meta, build_vocoder(cfg.evaluate.vocoder, audio_meta))


def decoding_protocol(cfg: Any, dm: AVDataModule, audio: AudioDecoder) -> dict[str, Any]:
    """How stored arrays became the media a metric saw: representations, the vocoder (and its weights), the
    reference split."""
    from avgen.weights import fingerprint

    video_meta, audio_meta = rep_metadata(dm)
    vocoder = getattr(audio, "vocoder", None)
    out = {
        "video_representation": video_meta["class"],
        "audio_representation": audio_meta["class"],
        "vocoder": type(vocoder).__name__ if vocoder is not None else None,
        "reference_split": dm.splits["val"],
    }
    if cfg.evaluate.vocoder.kind == "melgan" and cfg.evaluate.vocoder.checkpoint:
        out["vocoder_weights"] = fingerprint(cfg.evaluate.vocoder.checkpoint)
    return out


def decode_pairs(pairs: dict[str, np.ndarray], video: VideoDecoder, audio: AudioDecoder) -> dict[str, list]:
    return {
        "video": [video(v) for v in progress(pairs["video"], "decoding video")],
        "audio": _decode_audio(pairs["audio"], audio),
    }


def _decode_audio(clips: np.ndarray, audio: AudioDecoder, batch_size: int = 64) -> list[np.ndarray]:
    """Batched where the vocoder allows (one progress step per batch)."""
    chunks = [clips[i : i + batch_size] for i in range(0, len(clips), batch_size)]
    return [w for chunk in progress(chunks, "decoding audio (batches)") for w in audio.batch(chunk, batch_size)]


def write_videos(
    out_dir: Path, media: dict[str, list], num: int, fps: float, sample_rate: int, prefix: str = "sample"
) -> None:
    """The first `num` decoded pairs as `<prefix>_<i>.mp4` (video with its sound)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in progress(range(min(num, len(media["video"]))), "writing mp4"):
        write_sample(out_dir / f"{prefix}_{i:03d}.mp4", media["video"][i], media["audio"][i], fps, sample_rate)
