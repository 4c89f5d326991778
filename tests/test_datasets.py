"""Real-dataset adapters on miniature trees in each dataset's distributed layout (docs/datasets.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import instantiate
from media_helpers import av_clip

from avgen.config import load_config
from avgen.data.prepare.aistpp import AISTppAdapter
from avgen.data.prepare.epic_sounds import EpicSoundsAdapter, parse_timestamp
from avgen.data.prepare.landscape import LandscapeAdapter
from avgen.data.prepare.pipeline import Windowing, prepare
from avgen.data.prepare.vggsound import VGGSoundAdapter
from avgen.data.representations import AudioLogMel, VideoPixels
from avgen.data.store import Store

SMALL = {
    "video_pixels": VideoPixels(fps=10, size=16),
    "audio_mel": AudioLogMel(sample_rate=16000, n_mels=16, n_fft=512, hop_length=160),
}


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def composed(dataset: str, preset: str, raw, out, *extra: str):
    cfg = load_config("prepare", [f"dataset={dataset}", f"preset={preset}", f"raw={raw}", f"out={out}", *extra])
    reps = {name: instantiate(node) for name, node in cfg.preset.representations.items()}
    return instantiate(cfg.dataset), reps, instantiate(cfg.preset.windowing)


# ---------------------------------------------------------------------------------------------- AIST++

AIST_SPLITS = {
    "train": ["gBR_sBM_cAll_d04_mBR0_ch01", "gPO_sBM_cAll_d10_mPO1_ch02", "gJB_sBM_cAll_d08_mJB2_ch03"],
    "val": ["gHO_sBM_cAll_d19_mHO3_ch04"],
    "test": ["gKR_sBM_cAll_d28_mKR2_ch05"],
}


def aist_tree(root, real_video=None):
    for split, names in AIST_SPLITS.items():
        touch(root / "splits" / f"crossmodal_{split}.txt").write_text("\n".join(names) + "\n")
    for name in [
        "gBR_sBM_c01_d04_mBR0_ch01",
        "gBR_sBM_c02_d04_mBR0_ch01",
        "gPO_sBM_c01_d10_mPO1_ch02",
        "gHO_sBM_c01_d19_mHO3_ch04",
        "gKR_sBM_c01_d28_mKR2_ch05",
    ]:  # gJB (train) is not downloaded
        path = root / "videos" / f"{name}.mp4"
        real_video(path) if real_video and name.startswith("gBR_sBM_c01") else touch(path)
    return root


def test_aistpp_official_layout_splits_camera_and_labels(tmp_path):
    listing = AISTppAdapter(camera="c01").list_sources(aist_tree(tmp_path))
    got = {s.source_id: (s.split, listing.label_names[s.label]) for s in listing.sources}
    assert got == {
        "gBR_sBM_c01_d04_mBR0_ch01": ("train", "break"),
        "gPO_sBM_c01_d10_mPO1_ch02": ("train", "pop"),
        "gHO_sBM_c01_d19_mHO3_ch04": ("val", "house"),
        "gKR_sBM_c01_d28_mKR2_ch05": ("test", "krump"),
    }
    assert listing.missing == [str(tmp_path / "videos" / "gJB_sBM_c01_d08_mJB2_ch03.mp4")]
    other = AISTppAdapter(camera="c02").list_sources(tmp_path)
    assert [s.source_id for s in other.sources] == ["gBR_sBM_c02_d04_mBR0_ch01"] and len(other.missing) == 4


def test_aistpp_precut_folder(tmp_path):
    touch(tmp_path / "train" / "gBR_sBM_c01_d04_mBR0_ch01_0.mp4")
    touch(tmp_path / "test" / "gWA_sFM_c01_d25_mWA4_ch07_3.mp4")
    touch(tmp_path / "train" / "notes_m.mp4")
    listing = AISTppAdapter().list_sources(tmp_path)
    assert [(s.split, listing.label_names[s.label]) for s in listing.sources] == [("test", "waack"), ("train", "break")]
    assert len(listing.skipped) == 1 and "music id" in listing.skipped[0][1]


def test_cmmd_preset_keeps_time_alignment_through_the_vae(tmp_path, tiny_vaes):
    """AIST++ -> CMMD preset (SD-VAE latents via a tiny AutoencoderKL, 80-bin mel): a flash at a known frame
    lands in the right latent frame, a click at a known time in the right mel frame."""
    click, flash_time = 1.234, 1.5
    flash = tuple(sorted({int(np.floor(t * 25 + 1e-9)) for t in np.linspace(1.5, 1.55, 50)}))
    aist_tree(tmp_path / "raw", lambda p: av_clip(p, fps=25, frames=75, click_at=click, flash_frames=flash))
    adapter, reps, windowing = composed(
        "aistpp", "cmmd", tmp_path / "raw", tmp_path / "store", f"vae_path={tiny_vaes['video']}"
    )
    report = prepare(adapter, tmp_path / "raw", tmp_path / "store", reps, windowing, workers=1, progress=False)
    assert report["clips_written"] == 1 and report["num_missing"] == 1
    store = Store(tmp_path / "store")
    t0 = store.manifest[0]["start"] - 0.4
    latents = store.array("video_sdvae")[0].astype(np.float32)  # (18 + 8, 4, 64, 64)
    assert latents.shape == (26, 4, 64, 64)
    deviation = np.abs(latents - np.median(latents, axis=0)).mean(axis=(1, 2, 3))
    assert int(np.argmax(deviation)) == int(np.ceil((flash_time - t0) * 10 - 1e-6))  # first frame at/after it
    mel = store.array("audio_mel")[0].astype(np.float32)  # (80, 162)
    onset = int(np.argmax(np.maximum(np.diff(mel.mean(axis=0)), 0))) + 1
    assert abs(onset - (click - t0) * 16000 / 256) <= 1.5
    meta = store.metadata["representations"]
    assert meta["video_sdvae"]["scaling_factor"] == 0.18215 and meta["audio_mel"]["clip_frames"] == 112


def test_audioldm_latents_keep_the_click_in_its_frame(tmp_path, tiny_vaes):
    """mmdisco_ood's audio: AudioLDM log-mel -> AudioLDM VAE (x4 in time): the click's latent frame is right."""
    av_clip(tmp_path / "raw" / "train" / "thunder" / "a.mp4", fps=8, frames=24, click_at=1.3)
    adapter, reps, windowing = composed(
        "landscape",
        "mmdisco_ood",
        tmp_path / "raw",
        tmp_path / "store",
        f"vae_path={tiny_vaes['video']}",
        f"audioldm_path={tiny_vaes['audioldm']}",
        "preset.representations.video_sdvae.size=32",
    )
    prepare(adapter, tmp_path / "raw", tmp_path / "store", reps, windowing, workers=1, progress=False)
    store = Store(tmp_path / "store")
    audio = store.array("audio_audioldm")[0].astype(np.float32)
    assert audio.shape == (8, 50, 16)  # 2 s = 200 mel frames of 10 ms -> 50 latent frames; 64 bins -> 16
    assert store.rep("audio_audioldm").seconds_per_frame == pytest.approx(0.04)
    t0 = store.manifest[0]["start"]
    energy = np.abs(np.diff(audio, axis=1)).mean(axis=(0, 2))
    assert abs(int(np.argmax(energy)) + 1 - (1.3 - t0) / 0.04) <= 1.5
    assert store.array("video_sdvae").shape[1:] == (16, 4, 16, 16)


# -------------------------------------------------------------------------------------------- Landscape


def test_landscape_classes_splits_and_captions(tmp_path):
    touch(tmp_path / "train" / "thunder" / "t1.mp4")
    touch(tmp_path / "train" / "wind_noise" / "w1.mp4")
    touch(tmp_path / "test" / "explosion" / "e1.mp4")
    touch(tmp_path / "train" / "birds" / "b1.mp4")
    touch(tmp_path / "train" / "thunder" / "readme.txt")
    (tmp_path / "captions.csv").write_text('id,caption\nt1,"a storm, far away"\ne1.mp4,a loud blast\n')
    listing = LandscapeAdapter(captions=str(tmp_path / "captions.csv")).list_sources(tmp_path)
    got = {s.source_id: (s.split, listing.label_names[s.label], s.caption) for s in listing.sources}
    assert got == {
        "train/thunder/t1": ("train", "thunder", "a storm, far away"),
        "train/wind_noise/w1": ("train", "wind_noise", "wind noise"),
        "test/explosion/e1": ("test", "explosion", "a loud blast"),
    }
    assert len(listing.label_names) == 9
    assert sorted(r.split(" ")[0] for _, r in listing.skipped) == ["not", "not"]


# ------------------------------------------------------------------------------------------ EPIC-Sounds

EPIC_HEADER = (
    "annotation_id,participant_id,video_id,start_timestamp,stop_timestamp,start_sample,stop_sample,"
    "description,class,class_id\n"
)


def epic_tree(root, click_at: float):
    av_clip(root / "videos" / "P01" / "P01_01.MP4", fps=25, frames=125, click_at=click_at)
    (root / "EPIC_Sounds_train.csv").write_text(
        EPIC_HEADER
        + 'P01_01_0,P01,P01_01,00:00:00.300,00:00:04.500,7200,108000,"rustle, paper",rustle,5\n'
        + "P01_01_1,P01,P01_01,00:00:02.000,00:00:02.400,48000,57600,click,click,3\n"
        + "P02_03_0,P02,P02_03,00:00:01.000,00:00:03.000,24000,72000,water,water,7\n"
    )
    (root / "EPIC_Sounds_validation.csv").write_text(
        EPIC_HEADER + "P01_01_2,P01,P01_01,00:00:03.900,00:00:04.100,93600,98400,knock,click,3\n"
    )
    return root


def test_epic_sounds_short_segments_follow_the_policy(tmp_path):
    epic_tree(tmp_path / "raw", click_at=2.2)
    window = Windowing(clip_seconds=1.6, margin_seconds=0.2)
    adapter = EpicSoundsAdapter(window_seconds=2.0)
    report = prepare(adapter, tmp_path / "raw", tmp_path / "store", SMALL, window, workers=1, progress=False)
    store = Store(tmp_path / "store")
    rows = {r["id"]: r for r in store.manifest}
    # long segment [0.3, 4.5]: clips of 1.6 s with margins inside it; short [2.0, 2.4]: one window centred on it
    assert sorted(rows) == ["P01_01_0_0000", "P01_01_0_0001", "P01_01_1", "P01_01_2"]
    assert rows["P01_01_0_0000"]["start"] == pytest.approx(0.5)
    assert rows["P01_01_1"]["start"] == pytest.approx(2.2 - 0.8) and rows["P01_01_1"]["split"] == "train"
    assert rows["P01_01_2"]["split"] == "test" and rows["P01_01_2"]["label_name"] == "click"
    # the segment's sound sits at the centre of its clip
    mel = store.array("audio_mel")[rows["P01_01_1"]["index"]].astype(np.float32)
    onset = int(np.argmax(np.maximum(np.diff(mel.mean(axis=0)), 0))) + 1
    assert abs(onset - (0.2 + 0.8) * 100) <= 1.5
    assert report["missing"] == [str(tmp_path / "raw" / "videos" / "P02" / "P02_03.MP4")]
    # the video's last 0.2 s cannot centre P01_01_2's window: skipped with the reason, not a crash
    strict = EpicSoundsAdapter(window_seconds=2.0, short_segments="skip").list_sources(tmp_path / "raw")
    assert [s.source_id for s in strict.sources] == ["P01_01_0"]
    assert "short_segments=skip" in strict.skipped[0][1]


def test_epic_sounds_window_follows_the_preset(tmp_path):
    epic_tree(tmp_path, click_at=1.0)
    adapter, _, _ = composed("epic_sounds", "mmdisco_ind", tmp_path, tmp_path / "s")
    assert adapter.window_seconds == pytest.approx(1.6)
    assert parse_timestamp("01:02:03.250") == pytest.approx(3723.25)


# -------------------------------------------------------------------------------------------- VGGSound


def test_vggsound_missing_files_are_listed_and_keep_restricts(tmp_path):
    (tmp_path / "vggsound.csv").write_text(
        '---g-f_I2yQ,1,people marching,test\nabc123,30,"dog barking, growling",train\n'
        "xyz789,10,people marching,train\nkeep_me,0,thunder,train\n"
    )
    for name in ("---g-f_I2yQ_000001", "abc123_000030", "keep_me_000000"):
        touch(tmp_path / "video" / f"{name}.mp4")
    listing = VGGSoundAdapter().list_sources(tmp_path)
    assert [(s.source_id, s.split, s.caption) for s in listing.sources] == [
        ("---g-f_I2yQ_000001", "test", "people marching"),
        ("abc123_000030", "train", "dog barking, growling"),
        ("keep_me_000000", "train", "thunder"),
    ]
    assert listing.label_names == ["dog barking, growling", "people marching", "thunder"]
    assert listing.missing == [str(tmp_path / "video" / "xyz789_000010.mp4")]
    (tmp_path / "keep.txt").write_text("keep_me_000000\nxyz789_000010\n")
    kept = VGGSoundAdapter(keep=str(tmp_path / "keep.txt")).list_sources(tmp_path)
    assert [s.source_id for s in kept.sources] == ["keep_me_000000"] and len(kept.missing) == 1


def test_vggsound_header_row_is_a_clear_error(tmp_path):
    (tmp_path / "vggsound.csv").write_text("youtube_id,start_seconds,label,split\n")
    (tmp_path / "video").mkdir()
    with pytest.raises(ValueError, match="vggsound.csv line 1: expected"):
        VGGSoundAdapter().list_sources(tmp_path)


# ------------------------------------------------------------------------------------ roots and shards


@pytest.mark.parametrize(
    "adapter,expected",
    [
        (AISTppAdapter(), "splits/crossmodal_train.txt"),
        (LandscapeAdapter(), "<split>/<class>/<id>.mp4"),
        (EpicSoundsAdapter(window_seconds=2.0), "EPIC_Sounds_train.csv"),
        (VGGSoundAdapter(), "vggsound.csv"),
    ],
)
def test_wrong_raw_root_fails_at_once_naming_the_layout(tmp_path, adapter, expected):
    touch(tmp_path / "unrelated.txt")
    with pytest.raises(FileNotFoundError, match=expected.replace(".", r"\.").replace("<", ".").replace(">", ".")):
        prepare(adapter, tmp_path, tmp_path / "store", SMALL, Windowing(clip_seconds=1.0), progress=False)
    assert not (tmp_path / "store" / "parts").exists()


def test_two_shards_merged_equal_one_run(tmp_path):
    for k, cls in enumerate(["thunder", "raining", "fire_crackling", "thunder", "wind_noise"]):
        av_clip(
            tmp_path / "raw" / ("test" if k == 4 else "train") / cls / f"c{k}.mp4",
            frames=40 + 5 * k,
            click_at=0.3 + 0.1 * k,
            flash_frames=(5 + k,),
        )
    window = Windowing(clip_seconds=0.6, margin_seconds=0.1)
    run = lambda out, **kw: prepare(
        LandscapeAdapter(),
        tmp_path / "raw",
        tmp_path / out,
        SMALL,
        window,  # noqa: E731
        workers=1,
        progress=False,
        **kw,
    )
    run("single")
    shard0, shard1 = run("shard0", shard="0/2"), run("shard1", shard="1/2")
    assert (shard0["sources"], shard1["sources"]) == (3, 2)
    assert not (tmp_path / "shard0" / "metadata.json").exists()
    with pytest.raises(RuntimeError, match="prepared by none of the shards"):
        run("merged", merge=[tmp_path / "shard0"])
    run("merged", merge=[tmp_path / "shard0", tmp_path / "shard1"])
    single, merged = Store(tmp_path / "single"), Store(tmp_path / "merged")
    assert merged.manifest == single.manifest and len(merged.manifest) > 5
    for name in SMALL:
        np.testing.assert_array_equal(merged.array(name), single.array(name))
    assert json.loads((tmp_path / "merged" / "metadata.json").read_text()) == json.loads(
        (tmp_path / "single" / "metadata.json").read_text()
    )
