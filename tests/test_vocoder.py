"""MelGAN vocoder: the torch mel equals the store's, shapes line up, frozen loss values, a smoke run through the
command line whose checkpoint sampling loads (and refuses for another mel)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avgen.cli.main import main
from avgen.data.representations import AudioLogMel
from avgen.decoding.decode import AudioDecoder
from avgen.models.vocoder import LogMel, MelGAN
from avgen.vocoder.losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss
from avgen.vocoder.module import load_vocoder

MEL = dict(sample_rate=16000, n_mels=16, n_fft=2048, hop_length=1000, fmin=0.0, fmax=None, min_db=-40.0, max_db=25.0)


def test_torch_mel_equals_the_store_mel():
    t = np.arange(24000) / 16000
    wav = 0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    rep = AudioLogMel(**MEL)
    expected = rep.normalise(rep.mel_power(wav.astype(np.float32)))
    ours = LogMel(**MEL)(torch.from_numpy(wav.astype(np.float32))[None])[0].numpy()
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 2e-3


def test_generator_lengths_and_ratio_check():
    net = MelGAN(MEL, ratios=[8, 5, 5, 5], channels=4, disc_channels=4, disc_max_channels=16)
    mel = torch.zeros(2, 16, 5)
    assert net(mel).shape == (2, 1, 5 * 1000)
    assert net.vocode(mel).shape == (2, 4 * 1000)  # centred frames: T mel frames cover (T - 1) hops
    scores = net.discriminator(torch.zeros(2, 1, 4000))
    assert len(scores) == 3 and scores[0][-1].shape[1] == 1
    with pytest.raises(ValueError, match="hop_length"):
        MelGAN(MEL, ratios=[8, 8, 2, 2])


def test_gan_losses_frozen_values():
    real = [[torch.ones(2, 3, 4), torch.full((2, 1, 4), 1.0)]]
    fake = [[torch.zeros(2, 3, 4), torch.full((2, 1, 4), 0.5)]]
    assert torch.allclose(lsgan_discriminator_loss(real, fake), torch.full((2,), 0.25))  # 0 + 0.5^2
    assert torch.allclose(lsgan_generator_loss(fake), torch.full((2,), 0.25))  # (0.5 - 1)^2
    assert torch.allclose(feature_matching_loss(real, fake), torch.full((2,), 1.0))  # |1 - 0|, score excluded


def test_vocoder_train_smoke_and_use(tmp_path, synthetic_raw):
    out = tmp_path / "voc"
    assert (
        main(
            [
                "train",
                "experiment=vocoder_melgan_synthetic",
                f"data.root={synthetic_raw}",
                f"output_dir={out}",
                "data.max_files=8",
                "data.batch_size=4",
                "model.channels=4",
                "model.disc_channels=4",
                "model.disc_max_channels=16",
                "trainer.max_steps=4",
                "trainer.val_check_interval=2",
                "trainer.limit_val_batches=1",
                "method.score_batches=1",
                "trainer.enable_progress_bar=false",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic" and metrics["method"] == "vocoder"
    assert np.isfinite(metrics["mel_l1"]) and np.isfinite(metrics["mel_l1_griffin_lim"])
    meta = {"class": "AudioLogMel", **MEL, "fmax": 8000.0}
    vocoder = load_vocoder(out / "checkpoints" / "last.ckpt", meta)
    wav = AudioDecoder(meta, vocoder)(np.zeros((16, 25), np.float32))
    assert wav.shape == (24 * 1000,) and np.isfinite(wav).all()
    with pytest.raises(ValueError, match="n_mels"):
        load_vocoder(out / "checkpoints" / "last.ckpt", {**meta, "n_mels": 80})
