"""Validation images (callbacks/media.py): axes, a colour bar and, on synthetic clips, the video's bounces and
the audio's onsets over the spectrogram."""

from __future__ import annotations

import numpy as np


def test_a_synthetic_clip_shows_its_bounces_over_its_spectrogram(synthetic_store, tmp_path):
    from avgen.callbacks.media import spectrogram_png, synthetic_events
    from avgen.data.clips import first_clips
    from avgen.data.datamodule import AVDataModule, rep_metadata
    from avgen.metrics.synthetic import SyntheticProbe

    dm = AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", batch_size=2)
    dm.setup("fit")
    clip = first_clips(dm.val_dataloader(), 1)[0]
    frames = (clip["video"][0].numpy() + 1) / 2  # store layout [-1, 1] -> decoded frames in [0, 1]
    mel = clip["audio"][0].numpy()
    probe = SyntheticProbe.from_metadata(*rep_metadata(dm), num_classes=len(dm.store.label_names))
    events = synthetic_events(probe, frames, mel)
    assert len(events["video bounces"]) >= 1
    # the real clip's sound hits its bounces: every bounce has an onset within two video frames
    gaps = [np.abs(events["audio onsets"] - t).min() for t in events["video bounces"]]
    assert max(gaps) <= 2 / probe.video_fps, (events, gaps)
    hop = probe.hop_length / probe.sample_rate
    path = spectrogram_png(tmp_path / "s.png", mel, frames, "clip 0", hop, events)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
