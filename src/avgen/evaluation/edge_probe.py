"""Can a time-shifted negative be recognised from one modality alone? (docs/methods.md#cmmd, time-shift negatives)

CMMD's time-shift negatives (paper §2.2) displace one modality's window inside the stored context. If the
displaced window differs from a centred one in itself (the quiet start of a file, padding at its edge), a
network can tell the negative without comparing the two modalities, and the negative teaches nothing about
alignment. The probe: for each shift, a logistic regression on one modality's window alone (flattened) learns
centred vs shifted on the train split and is scored on the test split, where each clip gives one of its two
windows at random (the classes never share a clip). 0.5 is chance.
"""

from __future__ import annotations

import numpy as np
import torch

from avgen.data.clips import video_frames_to
from avgen.data.store import Store


def probe_windows(
    store: Store, rep_name: str, split: str, shift: int, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D), labels (N,)): each clip's centred (0) or `shift`-frame displaced (1) window."""
    rep = store.representations[rep_name]
    margin, length, axis = rep.margin_frames, rep.clip_frames, rep.time_axis
    idx = store.indices(split)[:limit]
    arr = store.array(rep_name)
    labels = np.random.default_rng(seed).integers(0, 2, len(idx))
    feats = [
        np.take(arr[i], np.arange(margin + shift * label, margin + shift * label + length), axis=axis)
        .astype(np.float32)
        .reshape(-1)
        for i, label in zip(idx, labels)
    ]
    return np.stack(feats), labels


def probe_accuracy(
    store: Store,
    rep_name: str,
    shift: int,
    limit: int = 2048,
    seed: int = 0,
    train_split: str = "train",
    test_split: str = "test",
) -> float:
    """Held-out accuracy of a logistic probe telling `shift`-frame displaced windows of `rep_name` from centred."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = probe_windows(store, rep_name, train_split, shift, limit, seed)
    x_test, y_test = probe_windows(store, rep_name, test_split, shift, limit, seed + 1000)
    scaler = StandardScaler().fit(x_train)
    probe = LogisticRegression(max_iter=2000, C=0.1).fit(scaler.transform(x_train), y_train)
    return float(probe.score(scaler.transform(x_test), y_test))


def edge_probe(
    store: Store,
    shift_frames: tuple[int, int] = (2, 4),
    modalities: tuple[str, ...] = ("audio", "video"),
    limit: int = 2048,
) -> dict[str, float]:
    """Probe accuracy for every shift the negative sampler draws (`shift_frames`, in video frames, either
    direction) on each modality's stored representation: {"audio -4 video frames (-8 frames)": acc, ...}."""
    by_modality = {rep.modality: name for name, rep in store.representations.items()}
    missing = [m for m in ("video", *modalities) if m not in by_modality]
    if missing:
        raise KeyError(f"{store.path}: no representation of {missing} (has {sorted(store.representations)})")
    seconds_per_frame = {m: store.representations[name].seconds_per_frame for m, name in by_modality.items()}
    out = {}
    for modality in modalities:
        rep = store.representations[by_modality[modality]]
        for video_frames in range(shift_frames[0], shift_frames[1] + 1):
            for sign in (-1, 1):
                # in this modality's frames, converted as the negative sampler converts them
                shift = int(video_frames_to(torch.tensor(sign * video_frames), seconds_per_frame, modality))
                if abs(shift) > rep.margin_frames:
                    raise ValueError(
                        f"{store.path}: a shift of {shift} {modality} frames needs that much margin; "
                        f"the store has {rep.margin_frames}"
                    )
                key = f"{modality} {sign * video_frames:+d} video frames ({shift:+d} frames)"
                out[key] = probe_accuracy(store, by_modality[modality], shift, limit, seed=video_frames)
    return out
