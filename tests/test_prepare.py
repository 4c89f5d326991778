"""mp4 -> store -> batch: alignment survives resampling; bad input is skipped with a reason; resume."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from media_helpers import audio_only, av_clip

from avgen.data.datamodule import AVDataModule
from avgen.data.prepare import pipeline
from avgen.data.prepare.folder import FolderAdapter
from avgen.data.prepare.pipeline import Windowing, prepare
from avgen.data.representations import AudioLogMel, AudioWaveform, VideoPixels
from avgen.data.store import Store, StoreError

REPS = {
    "video_pixels": VideoPixels(fps=10, size=16),
    "audio_mel": AudioLogMel(sample_rate=16000, n_mels=32, n_fft=512, hop_length=160, min_db=-60, max_db=20),
    "audio_wave": AudioWaveform(sample_rate=16000),
}
WINDOW = Windowing(clip_seconds=2.0, margin_seconds=0.3, max_clips_per_source=1)


@pytest.mark.parametrize(
    "fps,sample_rate,channels,size",
    [(25, 16000, 1, (48, 64)), (30, 48000, 2, (64, 48)), (24, 8000, 6, (10, 8)), (25, 44100, 1, (36, 36))],
)
def test_click_and_flash_land_in_the_right_frames(tmp_path, fps, sample_rate, channels, size):
    """A click at a known time -> the right mel frame; a flash at a known frame -> the right video frame."""
    click, flash_time = 1.234, 1.5
    # the source frames on screen during [1.5, 1.55]: at 10 fps only the frame sampled at 1.5 s shows them
    flash = tuple(sorted({int(np.floor(t * fps + 1e-9)) for t in np.linspace(1.5, 1.55, 50)}))
    av_clip(
        tmp_path / "raw" / "c" / "a.mp4",
        fps=fps,
        frames=int(3 * fps),
        height=size[0],
        width=size[1],
        sample_rate=sample_rate,
        channels=channels,
        click_at=click,
        flash_frames=flash,
    )
    report = prepare(
        FolderAdapter(test_fraction=0.0), tmp_path / "raw", tmp_path / "store", REPS, WINDOW, workers=1, progress=False
    )
    assert report["clips_written"] == 1, report["skipped"]
    store = Store(tmp_path / "store")
    t0 = store.manifest[0]["start"] - WINDOW.margin_seconds  # time of stored frame 0
    # the first window starts the mel's half STFT window (256 samples) into the file: its edge frames see signal
    assert t0 == pytest.approx(256 / 16000)

    video = store.array("video_pixels")[0].astype(np.float32)  # (F, C, H, W)
    bright = video.mean(axis=(1, 2, 3))
    # stored frame k shows the source frame on screen at t0 + k / 10: the first at or after the flash's start
    assert int(np.argmax(bright)) == int(np.ceil((flash_time - t0) * 10 - 1e-6))
    assert bright.max() > 0.5 and np.sort(bright)[-2] < -0.5  # exactly one bright frame

    mel = store.array("audio_mel")[0].astype(np.float32)  # (n_mels, T)
    flux = np.maximum(np.diff(mel.mean(axis=0)), 0)
    onset_frame = int(np.argmax(flux)) + 1
    # mel frame k is centred at t0 + k * hop / sr; the click's 10 ms burst sits within a frame of there
    assert abs(onset_frame - (click - t0) * 16000 / 160) <= 2.5

    wave = store.array("audio_wave")[0, 0].astype(np.float32)
    peak = np.argmax(np.abs(wave) > 0.1)
    assert abs(peak / 16000 - (click - t0)) < 0.003


def test_store_metadata_records_rates_not_shapes(tmp_path):
    av_clip(tmp_path / "raw" / "x" / "a.mp4", frames=75)
    prepare(
        FolderAdapter(test_fraction=0.0), tmp_path / "raw", tmp_path / "store", REPS, WINDOW, workers=1, progress=False
    )
    meta = Store(tmp_path / "store").metadata
    mel = meta["representations"]["audio_mel"]
    assert mel["seconds_per_frame"] == pytest.approx(0.01)
    assert mel["clip_frames"] == 200 and mel["margin_frames"] == 30 and mel["shape"] == [32, 260]
    assert meta["representations"]["video_pixels"]["clip_frames"] == 20
    assert meta["avgen_version"] and meta["label_names"] == ["x"]


def _bad_input_tree(root):
    good = av_clip(root / "dogs" / "good.mp4", frames=75)
    (root / "dogs" / "empty.mp4").write_bytes(b"")
    data = good.read_bytes()
    (root / "dogs" / "truncated.mp4").write_bytes(data[: len(data) // 2])
    av_clip(root / "cats" / "silent.mp4", frames=75, audio=False)
    audio_only(root / "cats" / "audio_only.mp4")
    av_clip(root / "cats" / "one_frame.mp4", frames=1, audio_seconds=3.0)
    av_clip(root / "cats" / "portrait.mp4", frames=75, height=96, width=48)
    av_clip(root / "cats" / "tiny.mp4", frames=75, height=6, width=8)
    av_clip(root / "cats" / "rate8k_5ch.mp4", frames=75, sample_rate=8000, channels=6)
    av_clip(root / "cats" / "rate48k_stereo.mp4", frames=75, sample_rate=48000, channels=2)
    av_clip(root / "cats" / "short.mp4", frames=20)
    (root / "cats" / "notes.txt").write_text("not a video")
    (root / "locked").mkdir()
    av_clip(root / "locked" / "hidden.mp4", frames=75)
    return {"good", "portrait", "tiny", "rate8k_5ch", "rate48k_stereo"}


def test_bad_inputs_are_skipped_with_reasons(tmp_path, monkeypatch):
    expected_ok = _bad_input_tree(tmp_path / "raw")
    real_scandir = os.scandir

    def scandir(path="."):  # root bypasses permission bits, so deny the directory the way the OS would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = prepare(
        FolderAdapter(test_fraction=0.0), tmp_path / "raw", tmp_path / "store", REPS, WINDOW, workers=1, progress=False
    )
    reasons = {os.path.basename(s["path"]): s["reason"] for s in report["skipped"]}
    assert "zero-byte" in reasons["empty.mp4"]
    assert "cannot open" in reasons["truncated.mp4"] or "cannot decode" in reasons["truncated.mp4"]
    assert "no audio stream" in reasons["silent.mp4"]
    assert "no video stream" in reasons["audio_only.mp4"]
    assert "frame" in reasons["one_frame.mp4"]
    assert "too short" in reasons["short.mp4"]
    assert "not a video file" in reasons["notes.txt"]
    assert "unreadable directory" in reasons["locked"]
    assert all("\n" not in r for r in reasons.values())
    store = Store(tmp_path / "store")
    assert {os.path.splitext(os.path.basename(r["source"]))[0] for r in store.manifest} == expected_ok
    assert json.loads((tmp_path / "store" / "report.json").read_text())["num_skipped"] == len(reasons)
    video = store.array("video_pixels")
    assert video.shape[1:] == (26, 3, 16, 16) and np.isfinite(video).all()  # 2.0 s clip + 2 x 0.3 s at 10 fps


def test_killed_job_resumes_without_redoing_finished_sources(tmp_path, monkeypatch):
    for i in range(6):
        av_clip(tmp_path / "raw" / "c" / f"{i}.mp4", frames=75, click_at=0.5 + 0.2 * i)
    calls = []
    real = pipeline.process_source

    def crashing(source, reps, windowing):
        if len(calls) == 4:
            raise KeyboardInterrupt  # the job is killed while working on the 5th source
        calls.append(source.source_id)
        return real(source, reps, windowing)

    monkeypatch.setattr(pipeline, "process_source", crashing)
    with pytest.raises(KeyboardInterrupt):
        prepare(
            FolderAdapter(test_fraction=0.0),
            tmp_path / "raw",
            tmp_path / "store",
            REPS,
            WINDOW,
            workers=1,
            progress=False,
            batch_sources=1,
        )
    assert not (tmp_path / "store" / "metadata.json").exists()  # an interrupted store is never "complete"
    finished = set(calls)
    monkeypatch.setattr(pipeline, "process_source", lambda s, r, w: calls.append(s.source_id) or real(s, r, w))
    report = prepare(
        FolderAdapter(test_fraction=0.0), tmp_path / "raw", tmp_path / "store", REPS, WINDOW, workers=1, progress=False
    )
    redone = calls[len(finished) :]
    assert not finished & set(redone) and len(redone) == 2
    assert report["sources_done_before"] == 4 and report["clips_written"] == 6
    # same arrays as one uninterrupted run
    monkeypatch.setattr(pipeline, "process_source", real)
    prepare(
        FolderAdapter(test_fraction=0.0), tmp_path / "raw", tmp_path / "once", REPS, WINDOW, workers=2, progress=False
    )
    for name in REPS:
        np.testing.assert_array_equal(Store(tmp_path / "store").array(name), Store(tmp_path / "once").array(name))
    assert Store(tmp_path / "store").manifest == Store(tmp_path / "once").manifest


def test_other_config_into_same_store_is_refused(tmp_path):
    av_clip(tmp_path / "raw" / "c" / "a.mp4", frames=75)
    prepare(FolderAdapter(), tmp_path / "raw", tmp_path / "store", REPS, WINDOW, workers=1, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        prepare(
            FolderAdapter(),
            tmp_path / "raw",
            tmp_path / "store",
            {"v": VideoPixels(5, 8), **REPS},
            WINDOW,
            workers=1,
            progress=False,
        )


def test_wrong_raw_root_fails_at_once(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        prepare(FolderAdapter(), tmp_path / "nope", tmp_path / "store", REPS, WINDOW, workers=1, progress=False)


def test_unwritable_out_fails_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        prepare(FolderAdapter(), tmp_path, tmp_path / "file" / "store", REPS, WINDOW, workers=1, progress=False)


def test_windowing_keeps_its_edge_from_the_file_ends():
    w = Windowing(clip_seconds=1.0, margin_seconds=0.25, edge_seconds=0.125)
    assert w.starts(3.0) == pytest.approx([0.375, 1.375])  # windows [0.125, 1.625], [1.125, 2.625] <= 2.875
    assert w.starts(2.7, context=0.2) == pytest.approx([0.45])  # the representations' context wins if larger
    assert w.starts(10.0, lo=2.0)[0] == pytest.approx(2.25)  # an annotated start inside the file: no edge
    assert w.starts(3.0, lo=1.5, hi=3.0) == pytest.approx([1.625])  # a range at the end slides in by the edge
    assert w.starts(1.7) == []  # 1.5 s window + 2 x 0.125 edge does not fit
    with pytest.raises(ValueError, match="edge_seconds"):
        Windowing(1.0, 0.25, edge_seconds=-1.0)


def test_a_mel_window_at_any_position_equals_the_whole_files_mel(tmp_path):
    """The mel is computed on a padded segment and cropped: the frames at a window's ends equal the same frames
    of a window elsewhere, not the zero-padded frames of a centred STFT at the window's edge."""
    from avgen.data.media import MediaFile

    path = av_clip(tmp_path / "a.mp4", frames=75, click_at=1.0)
    media, mel = MediaFile(path), REPS["audio_mel"]
    whole = mel.compute(media, 0.3, 2.0)  # frames at 0.30 + k * 0.01
    part = mel.compute(media, 0.9, 0.5)  # frames at 0.90 + k * 0.01: frame 60 of `whole` onwards
    np.testing.assert_allclose(part, whole[:, 60:110], atol=1e-4)
    assert mel.context_seconds == pytest.approx(256 / 16000) and REPS["video_pixels"].context_seconds == 0


def test_windowing_long_videos():
    w = Windowing(clip_seconds=1.0, margin_seconds=0.25, stride_seconds=0.5)
    assert w.starts(3.0) == pytest.approx([0.25, 0.75, 1.25, 1.75])
    assert w.starts(1.4) == []
    assert Windowing(1.0, 0.25, max_clips_per_source=2).starts(10.0) == pytest.approx([0.25, 1.25])
    assert w.starts(10.0, lo=2.0, hi=4.0) == pytest.approx([2.25, 2.75])
    assert w.starts(10.0, lo=2.0, hi=3.9) == pytest.approx([2.25])


def test_datamodule_batches_and_margins(synthetic_store):
    dm = AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", batch_size=8, margin_seconds=0.5)
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (8, 20, 3, 16, 16) and batch["audio"].shape == (8, 16, 40)
    assert batch["margin"] == {"video": 4, "audio": 8}
    assert batch["label"].dtype.is_floating_point is False and len(batch["id"]) == 8
    plain = AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", batch_size=4, margin_seconds=0.25)
    b2 = next(iter(plain.val_dataloader()))
    assert b2["video"].shape[1] == 12 + 2 * 2 and b2["audio"].shape[-1] == 24 + 2 * 4
    # the margin-free window is the centre of the margined one, for the same clip
    full = AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", batch_size=4, margin_seconds=0.5)
    b3 = next(iter(full.val_dataloader()))
    assert b3["id"] == b2["id"]
    np.testing.assert_array_equal(b3["video"][:, 2:-2], b2["video"])
    np.testing.assert_array_equal(b3["audio"][..., 4:-4], b2["audio"])


def test_datamodule_shuffle_is_seeded(synthetic_store):
    ids = [
        next(
            iter(
                AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", batch_size=8, seed=s).train_dataloader()
            )
        )["id"]
        for s in (1, 1, 2)
    ]
    assert ids[0] == ids[1] != ids[2]


def test_datamodule_errors_name_the_problem(synthetic_store, tmp_path):
    with pytest.raises(StoreError, match="make data"):
        AVDataModule(str(tmp_path / "missing"), "video_pixels", "audio_mel", make_hint="make data").setup("fit")
    with pytest.raises(ValueError, match="margin"):
        AVDataModule(str(synthetic_store), "video_pixels", "audio_mel", margin_seconds=2.0).train_dataloader()
    with pytest.raises(KeyError, match="video_latents"):
        AVDataModule(str(synthetic_store), "video_latents", "audio_mel").train_dataloader()
