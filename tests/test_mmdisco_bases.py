"""MMDisCo bases: frozen black boxes rebuilt from checkpoints; the resumable fake-pair cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avgen.data.datamodule import AVDataModule
from avgen.data.store import Store
from avgen.diffusion.denoiser import NetworkDenoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.mmdisco import fake_cache
from avgen.methods.mmdisco.bases import IndependentBases, build_bases, load_checkpoint_denoiser
from avgen.models.unets.dual_unet import DualUNet

SMALL = dict(
    base_channels=8,
    channel_mult=[1, 2],
    num_res_blocks=1,
    attention_levels=[1],
    head_dim=8,
    coupling="none",
    video_channels=3,
    audio_channels=16,
)


def _single(modality: str, seed: int) -> NetworkDenoiser:
    torch.manual_seed(seed)
    net = DualUNet(modalities=(modality,), **SMALL)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return NetworkDenoiser(net, {modality: NoiseSchedule()}, prediction="v")


def test_checkpoint_base_round_trip_and_frozen(tmp_path):
    den = _single("audio", 0)
    config = {
        "model": {"_target_": "avgen.models.unets.dual_unet.DualUNet", "modalities": ["audio"], **SMALL},
        "method": {
            "_target_": "avgen.methods.cmmd.module.CMMDModule",
            "schedule": {"_target_": "avgen.diffusion.schedule.NoiseSchedule"},
        },
    }
    torch.save(
        {"state_dict": {f"net.{k}": v for k, v in den.net.state_dict().items()}, "avgen_config": config},
        tmp_path / "base.ckpt",
    )
    loaded = load_checkpoint_denoiser(tmp_path / "base.ckpt")
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    x, t = {"audio": torch.randn(2, 16, 8)}, torch.tensor([5, 600])
    torch.testing.assert_close(loaded(x, t)["audio"], den.eval()(x, t)["audio"])
    with pytest.raises(FileNotFoundError, match="train the base"):
        load_checkpoint_denoiser(tmp_path / "missing.ckpt")


def test_a_flow_matching_checkpoint_is_refused_as_a_base(tmp_path):
    from avgen.models.transformers.dual_dit import DualStreamDiT

    model = {
        "_target_": "avgen.models.transformers.dual_dit.DualStreamDiT",
        "modalities": ["audio"],
        "audio_channels": 16,
        "width": 16,
        "depth": 1,
        "heads": 2,
        "coupling": "none",
    }
    net = DualStreamDiT(**{k: v for k, v in model.items() if k != "_target_"})
    config = {
        "model": model,
        "method": {
            "_target_": "avgen.methods.flow_matching.module.FlowMatchingModule",
            "schedule": {"_target_": "avgen.diffusion.flow.FlowSchedule"},
        },
    }
    torch.save(
        {"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "avgen_config": config},
        tmp_path / "flow.ckpt",
    )
    with pytest.raises(ValueError, match="not flow-matching"):
        load_checkpoint_denoiser(tmp_path / "flow.ckpt")


def test_independent_bases_see_only_their_modality():
    a, v = _single("audio", 1), _single("video", 2)
    bases = IndependentBases({"audio": a, "video": v})
    x = {"audio": torch.randn(2, 16, 8), "video": torch.randn(2, 4, 3, 8, 8)}
    t = torch.tensor([3, 300])
    out = bases(x, t)
    torch.testing.assert_close(out["audio"], a({"audio": x["audio"]}, t)["audio"])
    x2 = {"audio": x["audio"], "video": torch.randn_like(x["video"])}
    torch.testing.assert_close(bases(x2, t)["audio"], out["audio"])  # audio ignores the video
    assert not out["audio"].requires_grad


def test_fake_cache_resumes_to_the_same_store(synthetic_store, tmp_path, monkeypatch):
    real = Store(synthetic_store)
    bases = IndependentBases({"audio": _single("audio", 1), "video": _single("video", 2)})
    reps = {"video": "video_pixels", "audio": "audio_mel"}
    kwargs = dict(num=5, batch_size=2, steps=2, seed=3, progress=False)
    calls = []
    real_sample = fake_cache.sample

    def killed(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real_sample(*a, **k)

    monkeypatch.setattr(fake_cache, "sample", killed)
    with pytest.raises(KeyboardInterrupt):
        fake_cache.build_fake_cache(bases, real, reps, tmp_path / "resumed", **kwargs)
    monkeypatch.setattr(fake_cache, "sample", lambda *a, **k: calls.append(1) or real_sample(*a, **k))
    resumed = fake_cache.build_fake_cache(bases, real, reps, tmp_path / "resumed", **kwargs)
    assert len(calls) == 3  # two batches before the kill, only the third after
    once = fake_cache.build_fake_cache(bases, real, reps, tmp_path / "once", **kwargs)
    for name in reps.values():
        np.testing.assert_array_equal(resumed.array(name), once.array(name))
    assert resumed.array("video_pixels").shape == (5, 12, 3, 16, 16) and len(resumed) == 5
    batch = next(
        iter(
            AVDataModule(
                str(tmp_path / "resumed"), "video_pixels", "audio_mel", batch_size=2, train_split="fake"
            ).train_dataloader()
        )
    )
    assert batch["video"].shape == (2, 12, 3, 16, 16) and batch["audio"].shape == (2, 16, 24)
    # its sampling compute is counted, the same however the build was split
    tflops = resumed.metadata["sampling_tflops"]
    assert tflops > 0 and tflops == pytest.approx(once.metadata["sampling_tflops"], rel=1e-9)


def test_joint_checkpoint_is_a_frozen_black_box_base(tmp_path):
    """A joint (CMMD-like) checkpoint as MMDisCo's base: both modalities from one frozen network."""
    from functools import partial

    from avgen.methods.mmdisco.module import MMDisCoModule
    from avgen.models.discriminators.av_discriminator import AVDiscriminator

    torch.manual_seed(0)
    joint = {**SMALL, "coupling": "easy_fusion"}
    net = DualUNet(**joint)
    with torch.no_grad():  # zero-initialised output layers would hide the coupling
        for p in net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    config = {
        "model": {"_target_": "avgen.models.unets.dual_unet.DualUNet", **joint},
        "method": {
            "_target_": "avgen.methods.cmmd.module.CMMDModule",
            "schedule": {"_target_": "avgen.diffusion.schedule.NoiseSchedule"},
        },
    }
    torch.save(
        {"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "avgen_config": config},
        tmp_path / "cmmd.ckpt",
    )
    disc = AVDiscriminator(
        video_channels=3, audio_channels=16, base_channels=8, channel_mult=(1,), blocks_per_level=1, head_dim=8
    )
    module = MMDisCoModule(
        disc,
        bases=build_bases("unused", "unused", joint=str(tmp_path / "cmmd.ckpt")),
        optimizer=partial(torch.optim.Adam),
        fake_cache={},
    )
    assert set(module.bases.modalities) == {"audio", "video"} and not module.bases.training
    assert not any(p.requires_grad for p in module.bases.parameters())
    x, t = {"audio": torch.randn(2, 16, 8), "video": torch.randn(2, 4, 3, 8, 8)}, torch.tensor([5, 600])
    x2 = {"audio": x["audio"], "video": torch.randn_like(x["video"])}
    assert not torch.allclose(module.bases(x, t)["audio"], module.bases(x2, t)["audio"])  # joint: audio sees video
    with pytest.raises(FileNotFoundError, match="make train EXP=cmmd_x"):
        build_bases(joint=str(tmp_path / "cmmd_x" / "checkpoints" / "last.ckpt"))
    with pytest.raises(FileNotFoundError, match="make train EXP=base_audio_x"):
        build_bases(
            audio=str(tmp_path / "base_audio_x" / "checkpoints" / "last.ckpt"), video=str(tmp_path / "cmmd.ckpt")
        )


def test_a_cache_of_other_bases_is_refused_not_reused(synthetic_store, tmp_path):
    """A finished cache records the bases' weights (SHA-256); an unfinished one refuses parts of other bases."""
    real = Store(synthetic_store)
    reps = {"video": "video_pixels", "audio": "audio_mel"}
    kwargs = dict(num=2, batch_size=2, steps=2, seed=3, progress=False)
    mine = IndependentBases({"audio": _single("audio", 1), "video": _single("video", 2)})
    other = IndependentBases({"audio": _single("audio", 5), "video": _single("video", 6)})
    source = fake_cache.bases_fingerprint(mine)
    assert source == fake_cache.bases_fingerprint(mine) != fake_cache.bases_fingerprint(other)
    store = fake_cache.build_fake_cache(mine, real, reps, tmp_path / "cache", source=source, **kwargs)
    assert store.metadata["bases_sha256"] == source
    fake_cache.check_source(tmp_path / "cache", store.metadata["bases_sha256"], source)  # the same bases: reused
    with pytest.raises(ValueError, match="sampled from other bases"):
        fake_cache.check_source(tmp_path / "cache", store.metadata["bases_sha256"], fake_cache.bases_fingerprint(other))
    with pytest.raises(ValueError, match="sampled from other bases"):  # its parts are kept for its own bases
        fake_cache.build_fake_cache(
            other, real, reps, tmp_path / "cache", source=fake_cache.bases_fingerprint(other), **kwargs
        )
    # the settings too: another sampler step count or seed is refused, naming what differs
    settings = fake_cache.cache_settings(**{k: v for k, v in kwargs.items() if k != "progress"})
    assert store.metadata["cache_settings"] == settings
    with pytest.raises(ValueError, match=r"other settings \(steps: 2 there, 5 now\)"):
        fake_cache.check_settings(tmp_path / "cache", settings, {**settings, "steps": 5})
    with pytest.raises(ValueError, match="seed: 3 there, 4 now"):
        fake_cache.build_fake_cache(mine, real, reps, tmp_path / "cache", source=source, **{**kwargs, "seed": 4})
