"""CLAP score (docs/metrics.md): how well each generated clip's audio matches its own prompt, as av-benchmark
computes its `LAION-CLAP-Score` for text-to-audio (hkchengrex/av-benchmark `av_bench/extract.py`,
`extract_text.py`, `av_bench/evaluate.py`, on LAION-CLAP's `get_audio_embedding_from_data` and
`get_text_embedding`).

The reference, step by step, and where each step is here:
- audio (`clap_waves`): each clip's mean removed, resampled to 48 kHz, its first `audio_length` seconds
  (av-benchmark's AudioDataset, `--audio_length`, 8 s by default);
- `repeatpad` to the model's 10 s window (LAION-CLAP's `get_audio_features` for an unfused model: the clip
  repeated a whole number of times, then zeros), the HTSAT log-mel front end, the audio tower and projection:
  transformers' `ClapFeatureExtractor` and `ClapModel` run that part (`ClapTextAudio.audio`);
- text (`ClapTextAudio.text`): RoBERTa tokens padded to 77 and truncated there, the text tower and projection;
- each pair's cosine similarity (`pair_cosines`) and their mean (`clap_score`); no x100 scale.

Longer clips than the window would be cropped at random by the reference; here they are refused instead (set
`audio_length` to the window or less), so that a score never depends on an unseeded draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avgen.metrics.extractors import centred_waves, require_file
from avgen.metrics.stats import bootstrap_interval, derangements, safe_div

REFERENCE = (
    "av-benchmark LAION-CLAP-Score (extract.py / extract_text.py / evaluate.py) on LAION-CLAP "
    "get_audio_embedding_from_data and get_text_embedding"
)
MODEL_RATE = 48000  # LAION-CLAP's audio rate; av-benchmark resamples to it
TEXT_LENGTH = 77  # LAION-CLAP's tokenizer: padding="max_length", truncation=True, max_length=77


def clap_waves(wave: torch.Tensor, sample_rate: int, audio_length: float, model_rate: int = MODEL_RATE) -> np.ndarray:
    """(B, S) at `sample_rate` -> (B, S') at `model_rate`: av-benchmark's AudioDataset (mean removed, resampled,
    `audio[: int(sr * audio_length)]`)."""
    return centred_waves(wave, sample_rate, model_rate)[:, : int(model_rate * audio_length)]


def pair_cosines(audio: np.ndarray, text: np.ndarray) -> np.ndarray:
    """(N, d), (N, d) -> (N,): `torch.cosine_similarity(text, audio, dim=-1)` of each pair (av-benchmark's
    evaluate.py), in float64."""
    a, t = np.asarray(audio, np.float64), np.asarray(text, np.float64)
    eps = 1e-8  # torch.cosine_similarity's
    return (a * t).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(t, axis=-1), eps)


def clap_score(cosines: np.ndarray) -> float:
    """The mean of the pairs' cosines (av-benchmark's `.mean()`), unscaled."""
    return float(np.mean(cosines))


def deranged_scores(audio: np.ndarray, text: np.ndarray, num_derangements: int, seed: int) -> np.ndarray:
    """The score with each audio scored against another clip's prompt, for `num_derangements` seeded
    derangements (no clip keeps its own prompt): what the score is at chance for these clips and prompts."""
    perms = derangements(len(text), num_derangements, seed)
    return np.array([clap_score(pair_cosines(audio[perm], text)) for perm in perms])


def calibrated_clap_score(
    audio: np.ndarray, text: np.ndarray, seed: int = 0, num_derangements: int = 100
) -> dict[str, float | list[float] | None]:
    """{value, interval, floor, floor_std} of paired (N, d) audio and text embeddings: the bootstrap interval
    over pairs and the derangement floor (None below 2 pairs: nothing to derange), as ImageBindScore.calibrated."""
    cos = pair_cosines(audio, text)
    columns = {"cos": cos, "ones": np.ones(len(cos))}
    out: dict[str, float | list[float] | None] = {
        "value": clap_score(cos),
        "interval": list(bootstrap_interval(columns, lambda s: safe_div(s["cos"], s["ones"]), seed=seed)),
        "floor": None,
        "floor_std": None,
    }
    if len(cos) >= 2:
        chance = deranged_scores(audio, text, num_derangements, seed)
        out.update(floor=float(chance.mean()), floor_std=float(chance.std()))
    return out


class ClapTextAudio:
    """A transformers CLAP directory (model, feature extractor, tokenizer) as av-benchmark runs LAION-CLAP:
    `audio(wave)` and `text(prompts)` give L2-normalised (N, d) float64 embeddings."""

    def __init__(self, model_dir: str | Path, sample_rate: int, audio_length: float = 8.0, batch_size: int = 16):
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        self.model = ClapModel.from_pretrained(model_dir).eval()
        self.processor = ClapFeatureExtractor.from_pretrained(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.sample_rate, self.audio_length, self.batch_size = sample_rate, audio_length, batch_size
        self.model_rate = self.processor.sampling_rate
        self.window = int(self.processor.nb_max_samples)  # the model's window in samples (10 s for LAION's)
        # LAION-CLAP get_audio_embedding_from_data: data_truncating "fusion" if the model fuses, else "rand_trunc";
        # data_filling "repeatpad"
        self.fusion = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        if audio_length * self.model_rate > self.window:
            raise ValueError(
                f"evaluate.clap.audio_length={audio_length} s exceeds the model's {self.window / self.model_rate:g} s "
                "window (the reference would crop it at random): set it to the window or less"
            )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def audio(self, wave: torch.Tensor) -> np.ndarray:
        """(B, S) at `sample_rate` -> (B, d), each row of unit norm."""
        waves = clap_waves(wave, self.sample_rate, self.audio_length, self.model_rate)
        out = []
        for start in range(0, len(waves), self.batch_size):
            inputs = self.processor(
                list(waves[start : start + self.batch_size]),
                sampling_rate=self.model_rate,
                truncation="fusion" if self.fusion else "rand_trunc",
                padding="repeatpad",
                return_tensors="pt",
            )
            emb = self.model.get_audio_features(**{k: v.to(self.device) for k, v in inputs.items()})
            out.append(_projected(emb))
        return F.normalize(torch.cat(out).double(), dim=-1).cpu().numpy()

    @torch.no_grad()
    def text(self, prompts: Sequence[str]) -> np.ndarray:
        """B prompts -> (B, d), each row of unit norm."""
        out = []
        for start in range(0, len(prompts), self.batch_size):
            tokens = self.tokenizer(
                list(prompts[start : start + self.batch_size]),
                padding="max_length",
                truncation=True,
                max_length=TEXT_LENGTH,
                return_tensors="pt",
            )
            emb = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
            out.append(_projected(emb))
        return F.normalize(torch.cat(out).double(), dim=-1).cpu().numpy()


def _projected(emb) -> torch.Tensor:
    """transformers 5 returns the projected embedding as an output's `pooler_output`, 4 as a tensor."""
    return emb.pooler_output if hasattr(emb, "pooler_output") else emb


def load_clap_text_audio(
    path: str | Path, sample_rate: int, audio_length: float = 8.0, key: str = "evaluate.clap.weights"
) -> ClapTextAudio:
    """A local transformers CLAP directory or a registry name (e.g. `larger-clap-music-and-speech`)."""
    p = require_file(path, key)
    if not (p.is_dir() and (p / "config.json").exists()):
        raise ValueError(f"{key}: {p} is not a transformers CLAP directory (config.json, weights, tokenizer)")
    return ClapTextAudio(p, sample_rate, audio_length)
