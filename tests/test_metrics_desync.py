"""DeSync: Synchformer's checkpoint layout, its inputs and its offsets against transcriptions of the references
(tests/reference/), and the metric end to end through media_metrics with stand-in weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avgen.metrics import desync as ds
from avgen.models import synchformer as sf
from tests.reference import desync_script as ref
from tests.reference.synchformer_keys import checkpoint_layout

SMALL = sf.SynchformerConfig(dim=128, video_depth=1, audio_depth=1, sync_depth=1)


def test_state_dict_is_the_public_checkpoints_layout():
    with torch.device("meta"):
        model = sf.Synchformer()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = checkpoint_layout()
    assert sorted(set(ours) ^ set(expected)) == []
    assert {k: s for k, s in ours.items() if s != expected[k]} == {}
    assert sf.SynchformerConfig.from_state_dict(model.state_dict()) == sf.SynchformerConfig()


def test_a_random_state_dict_round_trips_strictly(tmp_path):
    torch.manual_seed(0)
    state = sf.Synchformer(SMALL).state_dict()
    torch.save(state, tmp_path / "sync.pth")
    loaded = sf.load_synchformer(tmp_path / "sync.pth")
    assert loaded.cfg == SMALL
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    sf.Synchformer(SMALL).load_state_dict(state, strict=True)
    del state["transformer.off_head.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="evaluate.desync.weights.*missing.*off_head.bias"):
        sf.load_synchformer(tmp_path / "broken.pth")


@pytest.mark.parametrize("over_time", [True, False])
def test_divided_attention_matches_the_reference(over_time):
    torch.manual_seed(0)
    attn = sf.DividedAttention(32, heads=4)
    frames, patches = 3, 5
    x = torch.randn(2, 1 + frames * patches, 32)
    expected = ref.divided_attention(attn.qkv, attn.proj, 4, x, over_time, frames, patches)
    torch.testing.assert_close(attn(x, frames, over_time), expected, rtol=1e-5, atol=1e-5)


def test_forward_matches_the_reference_transcription():
    torch.manual_seed(0)
    cfg = sf.SynchformerConfig(dim=192, video_depth=2, audio_depth=2, sync_depth=2)  # 3 heads, 2 in the sync head
    model = sf.Synchformer(cfg).eval()
    video = torch.randn(1, 2, 16, 3, 224, 224)  # (B, S, frames, 3, H, W)
    mels = torch.randn(1, 2, 128, 66)
    with torch.no_grad():
        torch.testing.assert_close(
            model.video_features(video), ref.extract_vfeats(model, video, cfg.heads), rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(
            model.audio_features(mels), ref.extract_afeats(model, mels[:, :, None], cfg.heads), rtol=1e-4, atol=1e-4
        )
        v, a = torch.randn(2, 14, 8, 192), torch.randn(2, 14, 6, 192)
        torch.testing.assert_close(
            model.offset_logits(v, a), ref.compare_v_a(model, v, a, cfg.sync_heads), rtol=1e-4, atol=1e-4
        )


def test_log_mel_matches_torchaudio_transcription():
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(16000) * 0.1 + np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    expected = ref.encode_audio(wave.astype(np.float64))  # (S, 128, 66)
    ours = sf.log_mel(sf.segments(torch.from_numpy(wave), sf.SEGMENT_SAMPLES, sf.SEGMENT_STEP_SAMPLES))
    assert ours.shape == expected.shape == (2, 128, 66)
    np.testing.assert_allclose(ours.numpy(), expected, atol=2e-4)
    np.testing.assert_allclose(ours[..., -1].numpy(), (0 - sf.AST_MEAN) / (2 * sf.AST_STD))  # the padded frame
    fb = sf.mel_filterbank(513, 128, 16000).numpy()
    np.testing.assert_allclose(fb, ref.melscale_fbanks(513, 0.0, 8000.0, 128, 16000), atol=1e-6)


def test_desync_matches_av_benchmark_on_made_up_logits():
    g = torch.Generator().manual_seed(0)
    first, last = torch.randn(37, 21, generator=g), torch.randn(37, 21, generator=g)
    per_clip = ds.clip_desync(first, last)
    assert ds.desync(per_clip) == pytest.approx(ref.desync_scores(first, last), abs=1e-6)
    assert ds.offset_grid()[[0, 10, 20]].tolist() == pytest.approx([-2.0, 0.0, 2.0])
    onehot = torch.eye(21)[[0, 10, 13]]  # -2.0, 0.0, +0.6 s
    assert ds.clip_desync(onehot, onehot[[2, 2, 0]]).tolist() == pytest.approx([1.3, 0.3, 1.3])


def test_clip_inputs_cut_segments_as_the_reference():
    rng = np.random.default_rng(0)
    frames = rng.random((60, 3, 24, 32)).astype(np.float32)  # 6 s at 10 fps
    wave = rng.standard_normal(6 * 8000).astype(np.float32)  # at 8 kHz
    video, mels = ds.clip_inputs(frames, wave, 10.0, 8000)
    assert video.dtype == mels.dtype == torch.float32
    assert ds.clip_inputs(rng.random((125, 3, 224, 224)), wave[:40000], 25.0, 8000)[0].dtype == torch.float32
    # 6 s: 150 frames at 25 fps -> 17 segments; 96000 samples at 16 kHz -> 17 segments
    assert video.shape == (17, 16, 3, 224, 224) and mels.shape == (17, 128, 66)
    assert video.min() >= -1 and video.max() <= 1
    assert sf.frame_indices(60, 10.0, 6.0)[:6].tolist() == [0, 0, 1, 1, 2, 2]  # 25 fps from 10 fps, nearest
    with pytest.raises(ValueError, match="at least 4.8 s"):
        ds.clip_inputs(frames[:40], wave, 10.0, 8000)


def test_resize_center_crop_as_torchvision():
    x = torch.arange(2 * 3 * 224 * 300, dtype=torch.float32).reshape(2, 3, 224, 300) % 256
    out = sf.resize_center_crop(x)  # shorter side already 224: a centre crop only
    torch.testing.assert_close(out, (x[..., 38:262] / 255 - 0.5) / 0.5)
    assert sf.resize_center_crop(torch.zeros(1, 3, 32, 48)).shape == (1, 3, 224, 224)


def test_media_metrics_desync_end_to_end(tmp_path):
    from avgen.config import load_config
    from avgen.evaluation.media_scores import media_metrics

    torch.manual_seed(0)
    torch.save(sf.Synchformer(SMALL).state_dict(), tmp_path / "sync.pth")
    cfg = load_config("train", [f"paths.output_dir={tmp_path}", f"evaluate.desync.weights={tmp_path / 'sync.pth'}"])
    rng = np.random.default_rng(0)
    media = {
        "video": [rng.random((40, 3, 16, 16)).astype(np.float32) for _ in range(2)],  # 5 s at 8 fps
        "audio": [rng.standard_normal(5 * 16000).astype(np.float32) * 0.1 for _ in range(2)],
    }
    out = media_metrics(["desync"], media, media, cfg, 8.0, 16000)
    assert 0 <= out["desync"] <= 2 and np.isfinite(out["desync"])
    low, high = out["intervals"]["desync"]
    assert low <= out["desync"] <= high
    protocol = out["protocol"]["desync"]
    assert protocol["extractor"]["file"] == "sync.pth" and len(protocol["extractor"]["sha256"]) == 64
    assert (protocol["model_fps"], protocol["model_rate"], protocol["scale"], protocol["num_samples"]) == (
        25.0,
        16000,
        1,
        2,
    )


class _Decoder:
    """Stand-in decoders: representations are already frames (T, 3, H, W) / waveforms."""

    fps, sample_rate = 8.0, 16000

    def __call__(self, x):
        return np.asarray(x)

    def batch(self, xs, batch_size=64):
        return [np.asarray(x) for x in xs]


def test_v2a_desync_scores_generated_audio_on_the_test_videos(tmp_path):
    from avgen.config import load_config
    from avgen.evaluation.scoring import v2a_media

    torch.manual_seed(0)
    torch.save(sf.Synchformer(SMALL).state_dict(), tmp_path / "sync.pth")
    cfg = load_config("train", [f"paths.output_dir={tmp_path}", f"evaluate.desync.weights={tmp_path / 'sync.pth'}"])
    rng = np.random.default_rng(1)
    pairs = {
        "video": rng.random((2, 40, 3, 16, 16)).astype(np.float32),  # 5 s at 8 fps
        "audio": rng.standard_normal((2, 5 * 16000)).astype(np.float32) * 0.1,
        "reference": np.zeros((2, 5 * 16000), np.float32),
    }
    out = v2a_media(["desync"], pairs, _Decoder(), _Decoder(), cfg, {"vocoder": "none"})
    assert 0 <= out["v2a_desync"] <= 2
    assert out["intervals"]["v2a_desync"][0] <= out["v2a_desync"] <= out["intervals"]["v2a_desync"][1]
    assert out["protocol"]["v2a_desync"]["vocoder"] == "none" and out["protocol"]["v2a_desync"]["num_samples"] == 2


def test_score_a_folder_needs_no_reference_for_desync(tmp_path):
    import json

    from avgen.cli.main import main
    from tests.media_helpers import av_clip

    torch.manual_seed(0)
    torch.save(sf.Synchformer(SMALL).state_dict(), tmp_path / "sync.pth")
    folder = tmp_path / "gen"
    folder.mkdir()
    for i in range(2):
        av_clip(folder / f"s{i}.mp4", fps=25, frames=125, click_at=1.0 + i, flash_frames=(25 + 25 * i,))  # 5 s
    assert main(["score", str(folder), "metrics=desync", f"evaluate.desync.weights={tmp_path / 'sync.pth'}"]) == 0
    metrics = json.loads((folder / "scores" / "metrics.json").read_text())
    assert 0 <= metrics["desync"] <= 2 and metrics["protocol"]["desync"]["num_samples"] == 2


def test_short_clips_stop_desync_before_sampling(tmp_path):
    from avgen.config import load_config
    from avgen.evaluation.scoring import desync_lengths

    cfg = load_config("train", [f"paths.output_dir={tmp_path}", "evaluate.length_factor=2"])
    meta = {"clip_frames": 24, "seconds_per_frame": 0.125}  # 3 s clips
    desync_lengths(meta, cfg.evaluate, v2a=False)  # 6 s joint samples
    with pytest.raises(ValueError, match="test clips v2a conditions on.*3.00 s.*4.8 s"):
        desync_lengths(meta, cfg.evaluate, v2a=True)
    with pytest.raises(ValueError, match="joint samples.*length_factor"):
        desync_lengths({"clip_frames": 24, "seconds_per_frame": 0.0625}, cfg.evaluate, v2a=False)
    desync_lengths({"clip_frames": 120, "seconds_per_frame": 0.04}, cfg.evaluate, v2a=True)  # exactly 4.8 s


def test_plan_needs_desync_weights_and_auto_picks_them(tmp_path):
    from avgen.config import load_config
    from avgen.evaluation.plan import metric_plan

    listed = load_config("train", [f"paths.output_dir={tmp_path}", "evaluate.metrics=[desync]"])
    with pytest.raises(ValueError, match="evaluate.desync.weights"):
        metric_plan(listed, "vggsound")
    auto = load_config("train", [f"paths.output_dir={tmp_path}", "evaluate.desync.weights=synchformer-audioset"])
    assert "desync" in metric_plan(auto, "vggsound")


@pytest.mark.slow
def test_full_size_model_scores_a_clip():
    torch.manual_seed(0)
    metric = ds.DeSync(sf.Synchformer())
    rng = np.random.default_rng(0)
    frames, wave = rng.random((125, 3, 64, 64)).astype(np.float32), rng.standard_normal(80000).astype(np.float32)
    per_clip = metric.per_clip([frames], [wave], 25.0, 16000)
    assert per_clip.shape == (1,) and 0 <= per_clip[0] <= 2
