"""CLAP score (metrics/clap_score.py): equal to a transcription of av-benchmark's LAION-CLAP score on a tiny CLAP
built from config, its formulas, its calibration and its path through `media_metrics`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from avgen.evaluation.media_scores import media_metrics
from avgen.evaluation.plan import metric_plan
from avgen.metrics.clap_score import (
    ClapTextAudio,
    calibrated_clap_score,
    clap_score,
    deranged_scores,
    load_clap_text_audio,
    pair_cosines,
)
from tests.reference.laion_clap_score import laion_clap_score

PROMPTS = ["a dog barking in the city", "rain on the sea", "piano music at night", "people talking on the beach"]


def waves(n: int, seconds: float, rate: int, seed: int = 0) -> torch.Tensor:
    """Tones with noise and a DC offset (the mean removal matters), one frequency per clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    clips = [0.3 * np.sin(2 * np.pi * (300 + 170 * i) * t) + 0.05 * rng.standard_normal(t.size) + 0.1 for i in range(n)]
    return torch.from_numpy(np.stack(clips).astype(np.float32))


def audio_cfg(scorer: ClapTextAudio) -> dict:
    """LAION-CLAP's audio_cfg for the tiny model (its feature extractor's settings)."""
    ext = scorer.processor
    return dict(
        sample_rate=ext.sampling_rate,
        window_size=ext.fft_window_size,
        hop_size=ext.hop_length,
        mel_bins=ext.feature_size,
        fmin=ext.frequency_min,
        fmax=ext.frequency_max,
        clip_samples=ext.nb_max_samples,
    )


@pytest.mark.parametrize(
    "seconds, audio_length",
    [(0.3, 1.0), (1.5, 0.8)],  # repeat-padded to the 1 s window | cut to audio_length first, then padded
)
def test_clap_score_equals_the_reference_transcription(tiny_clap, seconds, audio_length):
    torch.set_num_threads(1)
    rate = 16000
    scorer = load_clap_text_audio(tiny_clap, rate, audio_length)
    audio = waves(3, seconds, rate)
    ours = clap_score(pair_cosines(scorer.audio(audio), scorer.text(PROMPTS[:3])))
    cfg = audio_cfg(scorer)
    reference = laion_clap_score(scorer.model, scorer.tokenizer, audio.numpy(), PROMPTS[:3], rate, audio_length, cfg)
    assert ours == pytest.approx(reference, rel=1e-5, abs=1e-6)
    # the match is not a constant network's: other audio moves both by as much
    reversed_audio = audio.numpy()[::-1].copy()
    other = laion_clap_score(scorer.model, scorer.tokenizer, reversed_audio, PROMPTS[:3], rate, audio_length, cfg)
    assert abs(other - reference) > 1e-4


def test_embeddings_are_unit_rows_and_prompts_are_truncated_at_77_tokens(tiny_clap):
    scorer = load_clap_text_audio(tiny_clap, 48000, 1.0)
    a, t = scorer.audio(waves(2, 0.5, 48000)), scorer.text(["dog " * 200, "rain"])  # 200 words: 77 tokens kept
    assert a.shape == t.shape == (2, 16) and a.dtype == np.float64
    assert np.allclose(np.linalg.norm(a, axis=-1), 1) and np.allclose(np.linalg.norm(t, axis=-1), 1)
    assert np.allclose(scorer.text(["dog " * 200])[0], scorer.text(["dog " * 300])[0])


def test_pair_cosines_of_identical_and_opposite_embeddings():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 16))
    assert np.allclose(pair_cosines(x, x), 1.0) and np.allclose(pair_cosines(x, -3 * x), -1.0)
    y = rng.standard_normal((5, 16))
    expected = torch.cosine_similarity(torch.from_numpy(y), torch.from_numpy(x), dim=-1).numpy()
    assert np.allclose(pair_cosines(x, y), expected) and clap_score(pair_cosines(x, x)) == pytest.approx(1.0)


def test_the_floor_lies_below_the_score_when_audio_matches_its_prompt():
    """Planted: each audio embedding is its own prompt's plus noise, the prompts mutually unrelated."""
    rng = np.random.default_rng(1)
    text = rng.standard_normal((40, 32))
    audio = text + 0.5 * rng.standard_normal((40, 32))
    cal = calibrated_clap_score(audio, text, seed=0, num_derangements=50)
    assert cal["value"] > 0.8 and abs(cal["floor"]) < 0.1 and cal["floor_std"] > 0
    assert cal["value"] > cal["floor"] + 10 * cal["floor_std"]
    lo, hi = cal["interval"]
    assert lo <= cal["value"] <= hi
    # a derangement never pairs an audio with its own prompt
    assert (deranged_scores(text, text, 20, seed=0) < 0.5).all()
    one = calibrated_clap_score(audio[:1], text[:1])  # one pair: nothing to derange
    assert one["floor"] is None and one["interval"] == [one["value"], one["value"]]


def clap_cfg(weights: Path | None, audio_length: float = 1.0):
    return OmegaConf.create(
        {
            "evaluate": {
                "seed": 0,
                "metrics": ["clap"],
                "synthetic": {"num_derangements": 20},
                "clap": {"weights": None if weights is None else str(weights), "audio_length": audio_length},
            }
        }
    )


def test_media_metrics_clap_end_to_end(tiny_clap):
    torch.set_num_threads(1)
    rate, n = 16000, 4
    audio = list(waves(n, 0.5, rate).numpy())
    generated = {"video": [np.zeros((2, 3, 8, 8), np.float32)] * n, "audio": audio}
    cfg = clap_cfg(tiny_clap)
    out = media_metrics(["clap"], generated, generated, cfg, fps=8.0, sample_rate=rate, prompts=PROMPTS)
    scorer = load_clap_text_audio(tiny_clap, rate, 1.0)
    direct = clap_score(pair_cosines(scorer.audio(torch.from_numpy(np.stack(audio))), scorer.text(PROMPTS)))
    assert out["clap_score"] == pytest.approx(direct, rel=1e-9)
    lo, hi = out["intervals"]["clap_score"]
    assert lo <= out["clap_score"] <= hi
    assert {"floor", "floor_std"} <= set(out["calibration"]["clap_score"])
    protocol = out["protocol"]["clap_score"]
    assert protocol["extractor"]["sha256"] and protocol["model_rate"] == 48000 and protocol["scale"] == 1
    assert protocol["num_samples"] == n and "av-benchmark" in protocol["reference"] and "1.0 s" in protocol["crop"]
    # a run without prompts: no value, a note saying why (never a silent zero)
    none = media_metrics(["clap"], generated, generated, cfg, fps=8.0, sample_rate=rate)
    assert "clap_score" not in none and "no prompts" in none["protocol"]["clap_score"]["skipped"]
    with pytest.raises(ValueError, match="3 prompts for 4"):
        media_metrics(["clap"], generated, generated, cfg, fps=8.0, sample_rate=rate, prompts=PROMPTS[:3])


def test_clap_is_planned_and_refuses_what_it_cannot_score(tiny_clap, tmp_path):
    train = OmegaConf.load(Path(__file__).resolve().parents[1] / "configs" / "train.yaml")
    assert train.evaluate.clap.weights is None and train.evaluate.clap.audio_length == 8.0
    assert metric_plan(clap_cfg(tiny_clap), "vggsound") == ["clap"]
    with pytest.raises(ValueError, match="evaluate.clap.weights"):
        metric_plan(clap_cfg(None), "vggsound")
    with pytest.raises(ValueError, match="window"):  # the tiny model's window is 1 s: the reference would crop
        load_clap_text_audio(tiny_clap, 16000, audio_length=2.0)
    (tmp_path / "not_clap").mkdir()
    with pytest.raises(ValueError, match="not a transformers CLAP directory"):
        load_clap_text_audio(tmp_path / "not_clap", 16000)
