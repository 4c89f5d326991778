"""Each modality's fidelity on its own, in the store's representation (docs/metrics.md#representation-fd).

The synthetic store has no pretrained feature space (FVD's I3D and FAD's CLAP see 16 px frames and a 16-bin
mel as noise), yet a change of the loss can trade one modality's realism for alignment (MMDisCo's L_dsm is
there for single-modal fidelity). These distances measure that directly: the Frechet distance between the
frames of generated and reference clips, pooled per set as FAD pools frame embeddings, with the jackknife
interval of every FD in avgen (metrics/frechet.py):

- `fd_video_pixels`: video frames average-pooled 2x2 (16x16x3 -> 8x8x3 = 192 values per frame), so the
  covariance of a few thousand frames is well estimated;
- `fd_audio_mel`: mel frames (16 bands per frame on the synthetic store).

They are variants with their own names, not FVD or FAD: comparable only between runs on one store and one
representation (the protocol names both), and lower is better (0 = the reference's frame distribution).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avgen.metrics.frechet import FeatureDistances

POOL = 2  # video frames average-pooled POOL x POOL before the distance


def video_frames(video: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) -> (N, T, C * H/POOL * W/POOL): each frame average-pooled, flattened."""
    n, t = video.shape[:2]
    pooled = F.avg_pool2d(video.flatten(0, 1).float(), POOL)  # (N*T, C, H/POOL, W/POOL)
    return pooled.reshape(n, t, -1)


def mel_frames(mel: torch.Tensor) -> torch.Tensor:
    """(N, M, F) mel bands x frames -> (N, F, M): one vector per frame."""
    return mel.float().transpose(1, 2)


FRAMES = {"video": ("fd_video_pixels", video_frames), "audio": ("fd_audio_mel", mel_frames)}


def representation_distances(
    generated: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    seed: int = 0,
    prefix: str = "",
    features: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """`fd_video_pixels` and `fd_audio_mel` of generated against reference clips (store arrays, video
    (N, T, C, H, W), mel (N, M, F)) with intervals and protocol, names prefixed (`no_joint_`...); the feature
    sets into `features[<name>]` for paired differences between runs."""
    out: dict[str, Any] = {"intervals": {}, "protocol": {}}
    for modality, (name, frames) in FRAMES.items():
        metric = FeatureDistances(frames, name, seed=seed)
        for x, real in ((reference[modality], True), (generated[modality], False)):
            metric.update(torch.from_numpy(np.asarray(x)), real=real)
        values = metric.compute()
        out[prefix + name] = float(values[name])
        if f"{name}_interval" in values:
            out["intervals"][prefix + name] = [float(v) for v in values[f"{name}_interval"]]
        out["protocol"][prefix + name] = {
            "num_samples": len(generated[modality]),
            "num_reference": len(reference[modality]),
            "features": "video frames average-pooled 2x2, flattened"
            if modality == "video"
            else "mel frames (one vector of bands per frame)",
            "scale": 1,
        }
        if features is not None and not prefix:
            features[name] = {k: v.float().cpu() for k, v in metric.features().items()}
    return out
