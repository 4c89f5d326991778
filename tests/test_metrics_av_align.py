"""AV-Align on media with known answers: a clip against itself vs against a time-shifted copy."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.metrics.av_align import AVAlign, av_align_iou

FPS, SR = 10, 16000


def jumping_square(jumps: list[int], frames: int = 40) -> np.ndarray:
    """A bright square that jumps to a new place at the given frames (motion peaks there)."""
    video = np.zeros((frames, 64, 64, 3), np.uint8)
    spots = [(8, 8), (36, 36), (8, 36), (36, 8)]
    spot = 0
    for k in range(frames):
        if k in jumps:
            spot = (spot + 1) % len(spots)
        y, x = spots[spot]
        video[k, y : y + 20, x : x + 20] = 230
    return video


def clicks(times: list[float], seconds: float = 4.0) -> np.ndarray:
    wav = np.random.default_rng(0).normal(0, 1e-3, int(seconds * SR)).astype(np.float32)
    for t in times:
        k = int(t * SR)
        wav[k : k + 160] += np.random.default_rng(1).uniform(-0.9, 0.9, 160).astype(np.float32)
    return wav


def test_iou_counts_one_to_one_matches():
    assert av_align_iou(np.array([1.0, 2.0]), np.array([1.05, 3.0]), 0.1) == pytest.approx(1 / 3)
    assert av_align_iou(np.array([1.0, 1.02]), np.array([1.0]), 0.1) == pytest.approx(1 / 2)  # never above 1
    assert av_align_iou(np.array([]), np.array([]), 0.1) == 0.0


def test_aligned_clip_scores_high_and_shifted_copy_low():
    jumps = [5, 13, 22, 31]
    video = jumping_square(jumps)
    aligned = AVAlign(FPS, SR)
    aligned.update([video], [clicks([k / FPS for k in jumps])])
    shifted = AVAlign(FPS, SR)
    shifted.update([video], [clicks([k / FPS + 0.4 for k in jumps])])  # every sound 4 frames late
    assert float(aligned.compute()) > 0.6
    assert float(shifted.compute()) < 0.2


def test_calibrated_av_align_sits_between_its_floors_and_ceiling():
    """Aligned pairs with distinct jump times: value near the real ceiling, deranged and shifted floors low."""
    from avgen.metrics.calibrated import calibrated_av_align

    schedules = [[5, 13, 22, 31], [8, 17, 27, 35], [3, 11, 20, 29], [6, 15, 24, 33], [9, 18, 26, 36]]
    videos = [jumping_square(j) for j in schedules]
    audios = [clicks([k / FPS for k in j]) for j in schedules]
    score = calibrated_av_align(
        videos, audios, FPS, SR, num_derangements=20, shift_seconds=0.4, reference=(videos, audios)
    )
    assert score.value == pytest.approx(score.ceiling) and score.value > 0.5  # the real pairs themselves
    assert score.floor < 0.35 and score.shifted_floor < 0.2 and score.floor_std >= 0
    lo, hi = score.interval
    assert lo <= score.value <= hi
    assert score.calibration()["normalised"] == pytest.approx(1.0)


def test_one_pair_has_an_interval_and_no_derangement_floor():
    from avgen.metrics.calibrated import calibrated_av_align

    jumps = [5, 13, 22, 31]
    score = calibrated_av_align([jumping_square(jumps)], [clicks([k / FPS for k in jumps])], FPS, SR)
    assert score.floor is None and "floor" not in score.calibration() and "shifted_floor" in score.calibration()
    assert score.interval == (score.value, score.value)
