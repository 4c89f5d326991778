"""Beat hit rate on audio with known beats: a clip against itself, against a shifted copy, under DDP-style merges."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.metrics.beats import BeatHitRate, beat_hits

SR = 16000


def click_track(bpm: float, seconds: float = 8.0, offset: float = 0.0) -> np.ndarray:
    wav = np.zeros(int(seconds * SR), np.float32)
    rng = np.random.default_rng(0)
    for t in np.arange(offset, seconds, 60.0 / bpm):
        k = int(t * SR)
        wav[k : k + 400] += rng.uniform(-0.9, 0.9, min(400, len(wav) - k)).astype(np.float32)
    return wav


def test_beat_hits_counts_within_tolerance():
    assert beat_hits(np.array([1.0, 2.05]), np.array([1.02, 2.0, 3.0]), 0.1) == 2
    assert beat_hits(np.array([]), np.array([1.0]), 0.5) == 0


def test_a_clip_hits_its_own_beats_and_a_shifted_copy_misses_at_100ms():
    ref = click_track(120)
    metric = BeatHitRate(SR)
    metric.update([ref], [ref])
    same = metric.compute()
    assert same["beat_hit_rate_100ms"] == pytest.approx(1.0) and same["beat_hit_rate_500ms"] == pytest.approx(1.0)
    shifted = BeatHitRate(SR)
    shifted.update([click_track(120, offset=0.25)], [ref])  # every beat 250 ms late
    out = shifted.compute()
    assert out["beat_hit_rate_100ms"] < 0.3 and out["beat_hit_rate_500ms"] > 0.8


def test_states_merge_like_ddp():
    a, b = BeatHitRate(SR), BeatHitRate(SR)
    ref = click_track(100)
    a.update([ref], [ref])
    b.update([click_track(100, offset=0.3)], [ref])
    a.merge_state(b)  # what the all-reduce of sums gives
    assert float(a.compute()["beat_hit_rate_100ms"]) == pytest.approx(0.5, abs=0.1)


def test_calibrated_beat_hit_rate_floors_and_interval():
    """Generated = the reference's own audio: rate 1 (the ceiling); other clips' beats or a 250 ms shift: lower."""
    from avgen.metrics.calibrated import calibrated_beat_hit_rate

    refs = [click_track(bpm, seconds=6.0) for bpm in (70, 95, 120, 150)]
    score = calibrated_beat_hit_rate(refs, refs, SR, 0.1, num_derangements=10, shift_seconds=0.25)
    assert score.value == pytest.approx(1.0) and score.ceiling == 1.0
    assert score.floor < 0.8 and score.shifted_floor < 0.3
    lo, hi = score.interval
    assert lo <= score.value <= hi
