"""The embedded synthetic dataset: deterministic, and its correspondences are exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avgen.data.media import MediaFile
from avgen.data.synthetic import CLASS_COLOURS, SyntheticConfig, class_pitches, generate, make_clip, render_video


def test_clip_is_deterministic_and_independent_of_dataset_size():
    a = make_clip(SyntheticConfig(num_train=10), "train", 7)
    b = make_clip(SyntheticConfig(num_train=5000), "train", 7)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    c = make_clip(SyntheticConfig(seed=1), "train", 7)
    assert c[0].event_times != a[0].event_times


@pytest.mark.parametrize("size,radius", [(64, 0.12), (16, 0.3), (8, 0.49)])
def test_frames_are_the_disc_shaded_over_the_whole_frame(size, radius):
    """render_video shades only the rows the disc reaches: bit for bit what shading every pixel gives (the
    stores, and every run trained on them, depend on these bytes)."""
    cfg = SyntheticConfig(size=size, ball_radius=radius)
    rng = np.random.default_rng(size)
    for label in range(4):
        xs, y, colour = rng.uniform(0, 1, 24), float(rng.uniform(0, 1)), CLASS_COLOURS[label]
        grid = (np.arange(size, dtype=np.float32) + 0.5) / size
        dist = np.sqrt((grid[None, None, :] - xs[:, None, None]) ** 2 + (grid[None, :, None] - y) ** 2) * size
        alpha = np.clip(radius * size + 0.5 - dist, 0.0, 1.0)[..., None]
        whole = ((cfg.background * (1 - alpha) + colour * alpha) * 255 + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(render_video(cfg, xs, y, colour), whole)


def test_generate_twice_gives_the_same_dataset(tmp_path):
    cfg = SyntheticConfig(num_train=3, num_test=2)
    for d in ("a", "b"):
        generate(cfg, tmp_path / d, workers=1, progress=False)
    for sidecar in sorted((tmp_path / "a").rglob("*_*.json")):
        twin = tmp_path / "b" / sidecar.relative_to(tmp_path / "a")
        assert json.loads(sidecar.read_text()) == json.loads(twin.read_text())
    assert len(list((tmp_path / "a" / "test").glob("*.mp4"))) == 2


def test_generate_refuses_a_directory_of_another_config(tmp_path):
    generate(SyntheticConfig(num_train=1, num_test=1), tmp_path, workers=1, progress=False)
    try:
        generate(SyntheticConfig(num_train=1, num_test=1, seed=5), tmp_path, workers=1, progress=False)
    except ValueError as e:
        assert "another config" in str(e)
    else:
        raise AssertionError("mixing configs in one directory must fail")


def test_a_validation_split_extends_a_dataset_without_touching_its_clips(tmp_path):
    generate(SyntheticConfig(num_train=2, num_test=1), tmp_path, workers=1, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*.mp4")}
    generate(SyntheticConfig(num_train=2, num_test=1, num_val=2), tmp_path, workers=1, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*.mp4")}
    assert {k: after[k] for k in before} == before  # train and test clips untouched
    assert sorted(set(after) - set(before)) == ["val_000000.mp4", "val_000001.mp4"]
    val = json.loads((tmp_path / "val" / "val_000000.json").read_text())
    assert val["event_times"] != json.loads((tmp_path / "train" / "train_000000.json").read_text())["event_times"]
    with pytest.raises(ValueError, match="only grow"):  # fewer clips would leave stale ones listed
        generate(SyntheticConfig(num_train=1, num_test=1, num_val=2), tmp_path, workers=1, progress=False)


def test_audio_onsets_are_exactly_at_the_bounces():
    cfg = SyntheticConfig()
    truth, frames, audio = make_clip(cfg, "train", 3)
    assert len(truth.event_times) >= 2
    sr = cfg.sample_rate
    for e in truth.event_times:
        k = int(np.ceil(e * sr))
        before = np.abs(audio[max(k - 200, 0) : k]).max()
        after = np.abs(audio[k : k + 200]).max()
        assert after > 0.3 and after > 20 * before or before > 0.05  # a tone starts at the bounce
    # without pre-roll, silence (the noise floor) before the first bounce
    truth, _, audio = make_clip(SyntheticConfig(preroll=0.0), "train", 3)
    k0 = int(truth.event_times[0] * sr)
    assert np.abs(audio[: max(k0 - 1, 1)]).max() < 0.02


def test_a_file_starts_mid_motion_as_loud_as_later():
    """The pre-roll: earlier tones ring into the first samples, so a file's start is no quieter than its middle
    (a quiet start let a time-shifted negative be told from its audio alone)."""

    def start_over_middle(cfg: SyntheticConfig) -> float:
        rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))
        n = int(0.25 * cfg.sample_rate)
        clips = [make_clip(cfg, "train", i)[2] for i in range(64)]
        middle = slice(cfg.sample_rate, cfg.sample_rate + n)  # 1 s in
        return np.mean([rms(a[:n]) for a in clips]) / np.mean([rms(a[middle]) for a in clips])

    assert start_over_middle(SyntheticConfig(preroll=0.0)) < 0.7  # 0.58
    assert 0.8 < start_over_middle(SyntheticConfig()) < 1.25  # 1.10


def test_ball_touches_a_wall_at_each_bounce():
    cfg = SyntheticConfig()
    truth, _, _ = make_clip(cfg, "test", 11)
    xs = np.array(truth.positions)
    t = np.arange(len(xs)) / cfg.fps
    for e in truth.event_times:
        x = np.interp(e, t, xs)
        assert min(abs(x - cfg.ball_radius), abs(x - (1 - cfg.ball_radius))) < 1.0 / cfg.fps


def test_colour_and_pitch_follow_the_class(tmp_path):
    cfg = SyntheticConfig(num_train=8, num_test=0)
    for i in range(8):
        truth, frames, audio = make_clip(cfg, "train", i)
        assert truth.pitch_hz == class_pitches(cfg.num_classes)[truth.label]
        ball = frames.reshape(-1, 3)[frames.reshape(-1, 3).max(axis=1) > 200].mean(axis=0) / 255
        assert np.argmin(((CLASS_COLOURS[: cfg.num_classes] - ball / ball.max()) ** 2).sum(1)) == truth.label
        spectrum = np.abs(np.fft.rfft(audio))
        peak_hz = np.argmax(spectrum) * cfg.sample_rate / len(audio)
        assert abs(peak_hz - truth.pitch_hz) < 5


def test_mp4_is_real_h264_aac(tmp_path):
    generate(SyntheticConfig(num_train=1, num_test=0), tmp_path, workers=1, progress=False)
    media = MediaFile(tmp_path / "train" / "train_000000.mp4")
    assert media.info.fps == 24 and media.info.width == 64 and media.info.sample_rate == 16000
    assert abs(media.info.video_duration - SyntheticConfig().duration) < 0.05
    import av

    with av.open(str(tmp_path / "train" / "train_000000.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"


@pytest.mark.slow
@pytest.mark.parametrize("edge_cues", [False, True])
def test_a_shifted_negative_cannot_be_told_from_one_modality_alone(tmp_path, synthetic_preset, edge_cues):
    """The edge probe (a logistic regression on one modality's window) stays at chance (<= 0.6) for every shift
    the negative sampler draws, in both modalities; with the old generator and windowing (no pre-roll, windows
    from the file's first sample) it tells backward-shifted audio apart: the probe can fail."""
    from hydra.utils import instantiate

    from avgen.config import load_config
    from avgen.data.prepare.pipeline import Windowing, prepare
    from avgen.data.store import Store
    from avgen.evaluation.edge_probe import edge_probe

    cfg, reps, windowing = synthetic_preset
    shift_frames = tuple(load_config("train", experiment="cmmd_synthetic").method.negatives.shift_frames)
    adapter = instantiate(
        cfg.dataset, num_train=512, num_test=256, num_val=0, workers=2, **({"preroll": 0.0} if edge_cues else {})
    )
    if edge_cues:  # the old layout: the stored window starts at the file's first sample, its mel zero-padded
        windowing = Windowing(windowing.clip_seconds, windowing.margin_seconds, max_clips_per_source=1)
        reps = {**reps, "audio_mel": _zero_padded_mel(reps["audio_mel"])}
    prepare(adapter, tmp_path / "raw", tmp_path / "store", reps, windowing, workers=1, progress=False)
    accuracy = edge_probe(Store(tmp_path / "store"), shift_frames)
    assert len(accuracy) == 2 * 2 * (shift_frames[1] - shift_frames[0] + 1)  # both modalities, both directions
    if edge_cues:
        assert accuracy["audio -4 video frames (-8 frames)"] > 0.75, accuracy
    else:
        assert max(accuracy.values()) <= 0.6, accuracy


def _zero_padded_mel(rep):
    """The mel as computed before the fix: a centred STFT on the window alone (zero padding at its ends)."""

    class ZeroPadded(type(rep)):
        context_seconds = 0.0

        def compute(self, media, t0, seconds):
            wav = media.audio(self.sample_rate, t0, seconds)
            return self.normalise(self.mel_power(wav))[:, : self.num_frames(seconds)].astype(np.float32)

    out = ZeroPadded.__new__(ZeroPadded)
    out.__dict__.update(rep.__dict__)
    return out
