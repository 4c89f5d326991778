"""Synthetic-data metrics are calibrated: real pairs score near 1, shuffled audio near chance."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.data.store import Store
from avgen.metrics.synthetic import (
    SyntheticProbe,
    derangement,
    pair_from_file,
    score_pairs,
    synthetic_metrics,
    to_frames_01,
)


def _test_pairs(store_path):
    store = Store(store_path)
    reps = store.representations
    v, a = reps["video_pixels"], reps["audio_mel"]
    probe = SyntheticProbe.from_metadata(v.meta, a.meta, num_classes=len(store.label_names))
    idx = store.indices("test")
    videos = [
        to_frames_01(store.array("video_pixels")[i][v.margin_frames : v.margin_frames + v.clip_frames]) for i in idx
    ]
    mels = [
        store.array("audio_mel")[i][:, a.margin_frames : a.margin_frames + a.clip_frames].astype(np.float32)
        for i in idx
    ]
    return store, probe, videos, mels


def test_real_pairs_near_one_shuffled_near_chance(synthetic_store):
    _, probe, videos, mels = _test_pairs(synthetic_store)
    m = synthetic_metrics(probe, videos, mels, seed=0)
    assert m["temporal_alignment"] > 0.85
    assert m["semantic_agreement"] > 0.95
    assert m["temporal_alignment_shuffled"] < 0.6
    assert m["semantic_agreement_shuffled"] < 0.5  # chance is 1/4 for 4 classes
    assert m["num_clips"] == 40


def test_robust_to_noisy_blurry_media(synthetic_store):
    """Generated media are blurry and noisy: the real/shuffled gap must survive that."""
    _, probe, videos, mels = _test_pairs(synthetic_store)
    rng = np.random.default_rng(0)
    noisy_v = []
    for v in videos:
        blurred = (
            v + np.roll(v, 1, axis=1) + np.roll(v, -1, axis=1) + np.roll(v, 1, axis=2) + np.roll(v, -1, axis=2)
        ) / 5
        noisy_v.append(np.clip(blurred + rng.normal(0, 0.08, v.shape), 0, 1))
    noisy_a = [np.clip(m + rng.normal(0, 0.15, m.shape), -1, 1) for m in mels]
    m = synthetic_metrics(probe, noisy_v, noisy_a, seed=0)
    assert m["temporal_alignment"] > m["temporal_alignment_shuffled"] + 0.2
    assert m["semantic_agreement"] > m["semantic_agreement_shuffled"] + 0.4


def test_noise_onsets_do_not_inflate_the_score(synthetic_store):
    """Audio that fires onsets everywhere scores low (F1, not recall)."""
    _, probe, videos, mels = _test_pairs(synthetic_store)
    rng = np.random.default_rng(1)
    clicks = []
    for m in mels:
        c = np.full_like(m, -1.0)
        c[:, ::2] = rng.uniform(0.2, 1.0, (m.shape[0], 1))  # a loud frame every other frame
        clicks.append(c)
    assert score_pairs(probe, videos, clicks)["temporal_alignment"] < 0.6


def test_silence_and_static_video_score_zero(synthetic_store):
    _, probe, videos, mels = _test_pairs(synthetic_store)
    flat_v = [np.full_like(v, 0.1) for v in videos]
    flat_a = [np.full_like(m, -1.0) for m in mels]
    assert score_pairs(probe, flat_v, flat_a)["temporal_alignment"] == 0.0


def test_time_shifted_audio_loses_alignment(synthetic_store):
    _, probe, videos, mels = _test_pairs(synthetic_store)
    shifted = [np.concatenate([np.full((m.shape[0], 4), -1.0, np.float32), m[:, :-4]], axis=1) for m in mels]
    aligned = score_pairs(probe, videos, mels)["temporal_alignment"]
    assert score_pairs(probe, videos, shifted)["temporal_alignment"] < aligned - 0.3  # 4 mel frames = 2 video frames


def test_scores_mp4_files_like_arrays(synthetic_store):
    store, probe, _, _ = _test_pairs(synthetic_store)
    paths = [store.manifest[i]["source"] for i in store.indices("test")[:12]]
    pairs = [pair_from_file(probe, p) for p in paths]
    m = synthetic_metrics(probe, [v for v, _ in pairs], [a for _, a in pairs])
    assert m["temporal_alignment"] > 0.85 and m["semantic_agreement"] > 0.95


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 10):
        p = derangement(n, seed=n)
        assert sorted(p) == list(range(n)) and not np.any(p == np.arange(n))
    with pytest.raises(ValueError):
        derangement(1)
