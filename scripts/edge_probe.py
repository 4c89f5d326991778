"""Can a negative be recognised from one modality alone? (CMMD fidelity: negatives without edge cues.)

For each time shift the negative sampler can draw (in video frames, either direction), a logistic probe on
the audio alone (the mel window, flattened) learns to tell shifted windows from centred ones on the train
split, and its accuracy is measured on the test split (each clip gives either its centred or its shifted
window, at random, so the two classes never share a clip). 0.5 is chance; a probe well above it means the
shifted window carries a cue of its own (e.g. the quieter start of a file), which teaches nothing about
alignment. Usage:

    python scripts/edge_probe.py [store=data/synthetic/store] [shifts=1,2,3,4] [clips=2048]
"""

from __future__ import annotations

import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from avgen.data.store import Store


def windows(store: Store, split: str, shift: int, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels): each clip's centred (0) or shifted (1) audio window, chosen at random."""
    rep = store.representations["audio_mel"]
    margin, length, axis = rep.margin_frames, rep.clip_frames, rep.time_axis
    idx = store.indices(split)[:limit]
    arr = store.array("audio_mel")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, len(idx))
    feats = []
    for i, label in zip(idx, labels):
        start = margin + (shift if label else 0)
        feats.append(np.take(arr[i], np.arange(start, start + length), axis=axis).reshape(-1))  # (n_mels, T)
    return np.stack(feats), labels


def main(argv: list[str]) -> dict:
    args = dict(a.split("=", 1) for a in argv)
    store = Store(args.get("store", "data/synthetic/store"))
    shifts = [int(s) for s in args.get("shifts", "1,2,3,4").split(",")]
    limit = int(args.get("clips", 2048))
    rep = store.representations["audio_mel"]
    per_video = store.representations["video_pixels"].seconds_per_frame / rep.seconds_per_frame
    out = {}
    for video_frames in shifts:
        for sign in (-1, 1):
            shift = int(round(sign * video_frames * per_video))  # in mel frames
            if abs(shift) > rep.margin_frames:
                continue
            x_train, y_train = windows(store, "train", shift, limit, seed=video_frames)
            x_test, y_test = windows(store, "test", shift, limit, seed=100 + video_frames)
            scaler = StandardScaler().fit(x_train)
            probe = LogisticRegression(max_iter=2000, C=0.1).fit(scaler.transform(x_train), y_train)
            out[f"{sign * video_frames:+d} video frames ({shift:+d} mel)"] = float(probe.score(scaler.transform(x_test), y_test))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
