"""Each modality's fidelity in the store's representation (metrics/representation_fd.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from avgen.metrics.representation_fd import representation_distances


def clips(seed: int, n: int = 48) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "video": np.tanh(rng.normal(0, 0.5, (n, 6, 3, 8, 8))).astype(np.float32),  # (N, T, C, H, W)
        "audio": np.tanh(rng.normal(0, 0.5, (n, 16, 10))).astype(np.float32),  # (N, mels, frames)
    }


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula (Heusel et al. 2017) on (frames, d) sets, with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * covmean))


def test_the_distances_are_the_frechet_distance_of_the_pooled_frames():
    generated, reference = clips(0), clips(1)
    out = representation_distances(generated, reference, seed=0)
    # video: each frame average-pooled 2x2, then flattened; audio: one vector of bands per mel frame
    pooled = lambda v: v.reshape(*v.shape[:3], 4, 2, 4, 2).mean((4, 6)).reshape(-1, 3 * 16)  # noqa: E731
    mel = lambda m: m.transpose(0, 2, 1).reshape(-1, 16)  # noqa: E731
    assert out["fd_video_pixels"] == pytest.approx(
        frechet(pooled(generated["video"]), pooled(reference["video"])), rel=1e-4
    )
    assert out["fd_audio_mel"] == pytest.approx(frechet(mel(generated["audio"]), mel(reference["audio"])), rel=1e-4)
    for name in ("fd_video_pixels", "fd_audio_mel"):
        lo, hi = out["intervals"][name]
        assert lo <= out[name] <= hi and out["protocol"][name]["num_samples"] == 48


def test_each_distance_sees_its_own_modality_only():
    reference = clips(1)
    louder = {"video": reference["video"], "audio": np.clip(reference["audio"] + 0.3, -1, 1)}
    out = representation_distances(louder, reference, seed=0)
    assert out["fd_video_pixels"] == pytest.approx(0.0, abs=1e-6)
    assert out["intervals"]["fd_audio_mel"][0] > 0  # the shifted mel resolves above 0
    same = representation_distances(reference, reference, seed=0, prefix="no_joint_")
    assert same["no_joint_fd_audio_mel"] == pytest.approx(0.0, abs=1e-6)


def test_the_feature_sets_are_kept_for_paired_differences():
    features: dict = {}
    representation_distances(clips(0), clips(1), seed=0, features=features)
    assert set(features) == {"fd_video_pixels", "fd_audio_mel"}
    assert features["fd_video_pixels"]["generated"].shape == (48, 6, 48)  # (N, frames, pooled values)
    assert features["fd_audio_mel"]["reference"].shape == (48, 10, 16)
