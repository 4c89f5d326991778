"""PANNs Cnn14 and VGGish (av-benchmark's FD-PANNs, FD-VGGish, KL-PANNs, IS-PANNs): the public checkpoints'
layouts, the front ends against their references, the scores against a transcription of av-benchmark's
formulas, and the media metrics end to end with randomly initialised stand-in weights."""

from __future__ import annotations

import os

import librosa
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from avgen.evaluation.media_scores import audio_classifier_metrics, media_metrics, prefixed
from avgen.metrics.classifier_scores import inception_scores, kl_mean, kl_per_pair
from avgen.metrics.extractors import load_panns, load_vggish
from avgen.models.panns import Cnn14
from avgen.models.vggish import VGGish, log_mel_examples
from tests.reference import audio_checkpoint_layouts as layouts
from tests.reference import panns_cnn14 as reference_panns
from tests.reference import vggish_mel_features
from tests.reference.av_benchmark_scores import compute_isc, compute_kl


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("rate,layout", [(16000, layouts.CNN14_16K), (32000, layouts.CNN14_32K)])
def test_cnn14_has_the_public_checkpoint_layout_and_round_trips(tmp_path, rate, layout):
    torch.manual_seed(0)
    net = Cnn14(rate)
    assert shapes(net) == layout
    path = tmp_path / "cnn14.pth"
    torch.save({"model": net.state_dict(), "iteration": 0}, path)  # the published checkpoints' wrapping
    fresh = Cnn14(rate)
    fresh.load_state_dict(torch.load(path, weights_only=True)["model"], strict=True)
    loaded = load_panns(path, rate)
    assert loaded.net.sample_rate == rate
    for a, b in zip(net.state_dict().values(), loaded.net.state_dict().values()):
        assert torch.equal(a, b)


def test_vggish_has_the_public_checkpoint_layout_and_round_trips(tmp_path):
    net = VGGish()
    assert shapes(net) == layouts.VGGISH
    path = tmp_path / "vggish.pth"
    torch.save(net.state_dict(), path)
    VGGish().load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert torch.equal(load_vggish(path, 16000).net.embeddings[4].weight, net.embeddings[4].weight)


def test_loaders_name_the_key_and_what_was_expected(tmp_path):
    path = tmp_path / "vggish.pth"
    torch.save(VGGish().state_dict(), path)
    with pytest.raises(ValueError, match="evaluate.panns.weights: .* not a PANNs Cnn14 state dict"):
        load_panns(path, 16000)
    # as published: the training sampler's numpy state beside the model (refused by the tensors-only loader)
    sampler = {"random_state": np.random.RandomState(0).get_state(), "indexes_per_class": [np.arange(3)]}
    torch.save({"model": Cnn14(16000).state_dict(), "sampler": sampler}, tmp_path / "cnn14.pth")
    assert load_panns(tmp_path / "cnn14.pth", 16000).net.sample_rate == 16000
    with pytest.raises(ValueError, match="evaluate.vggish.weights: .* not a torchvggish VGGish state dict"):
        load_vggish(tmp_path / "cnn14.pth", 16000)
    # numpy's array globals are all a weights file may pickle besides tensors: code is refused, never run
    torch.save({"model": Cnn14(16000).state_dict(), "hook": RunsCode()}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match=r"evaluate.panns.weights: .*code.pth pickles code objects .*posix.system"):
        load_panns(tmp_path / "code.pth", 16000)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("false",))


@pytest.mark.parametrize("rate", [16000, 32000])
def test_cnn14_log_mel_is_librosa_power_to_db(rate):
    """torchlibrosa's front end reproduces librosa (centred reflect-padded frames, Slaney mel, dB, no top_db)."""
    net = Cnn14(rate)
    wave = np.random.default_rng(0).standard_normal(rate // 2).astype(np.float32) * 0.1
    ours = net.logmel_extractor(net.spectrogram_extractor(torch.from_numpy(wave)[None]))[0, 0].numpy()  # (T, 64)
    f = net.front
    mel = librosa.feature.melspectrogram(
        y=wave.astype(np.float64),
        sr=rate,
        n_fft=f.window,
        hop_length=f.hop,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=64,
        fmin=f.fmin,
        fmax=f.fmax,
    )
    expected = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-3)


@pytest.mark.parametrize("rate", [16000, 32000])
@pytest.mark.slow  # Cnn14 forwards (80M parameters)
def test_cnn14_matches_the_reference_forward(rate):
    """Same weights (random, batch-norm statistics included) in ours and the reference transcription: the same
    front-end tensors at construction, the same embedding, logits and probabilities."""
    torch.manual_seed(0)
    ours = Cnn14(rate).eval()
    for name, buffer in ours.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            buffer.copy_(torch.rand_like(buffer) + (0.5 if name.endswith("var") else -0.5))
    f = ours.front
    ref = reference_panns.Cnn14(rate, f.window, f.hop, 64, f.fmin, f.fmax, 527).eval()
    built = ref.state_dict()
    for key in ("spectrogram_extractor.stft.conv_real.weight", "logmel_extractor.melW"):
        torch.testing.assert_close(ours.state_dict()[key], built[key], rtol=0, atol=1e-6)
    ref.load_state_dict(ours.state_dict(), strict=True)
    wave = torch.randn(2, rate, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        a, b = ours(wave), ref(wave)
    assert (a["embedding"] > 0).float().mean() > 0.1  # a live embedding, not ReLU-dead
    torch.testing.assert_close(a["embedding"], b["2048"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a["logits"], b["logits"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a["probabilities"], b["clipwise_output"], rtol=1e-4, atol=1e-6)


def test_vggish_examples_match_the_reference_pipeline():
    wave = np.random.default_rng(1).standard_normal(16000 * 2 + 1234) * 0.1
    expected = vggish_mel_features.waveform_to_examples(wave, 16000, return_tensor=False)
    ours = log_mel_examples(wave)
    assert ours.shape == expected.shape == (2, 96, 64)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="VGGish needs at least"):
        log_mel_examples(wave[:8000])


def test_kl_and_inception_score_match_av_benchmark():
    g = torch.Generator().manual_seed(0)
    generated, reference = (
        torch.randn(40, 527, generator=g, dtype=torch.float64) * 3,
        torch.randn(40, 527, generator=g, dtype=torch.float64) * 3,
    )
    expected = compute_kl([generated], reference)["kl_softmax"]
    assert kl_mean(generated, reference) == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert kl_per_pair(generated, generated).abs().max() < 1e-12
    # the direction: KL(reference || generated), not its reverse
    assert kl_mean(generated, reference) != pytest.approx(compute_kl([reference], generated)["kl_softmax"], rel=1e-3)
    # float32 logits as av-benchmark stores them: the reference computes in float32, ours in float64
    assert kl_mean(generated.float(), reference.float()) == pytest.approx(
        compute_kl([generated.float()], reference.float())["kl_softmax"], rel=1e-5
    )
    for n, splits in ((53, 10), (12, 3)):
        logits = torch.randn(n, 527, generator=g) * 2
        ref = compute_isc({"logits": logits}, "logits", rng_seed=2020, samples_shuffle=True, splits=splits)
        scores = inception_scores(logits, splits, seed=2020)
        assert scores.mean() == pytest.approx(ref["inception_score_mean"], rel=1e-6, abs=1e-6)
        assert scores.std() == pytest.approx(ref["inception_score_std"], rel=1e-6, abs=1e-6)
    with pytest.raises(ValueError, match="needs at least 10 clips"):
        inception_scores(torch.randn(5, 527), 10)


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory):
    """Randomly initialised Cnn14 (16 kHz front end) and VGGish, saved as the public files are."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save({"model": Cnn14(16000).state_dict(), "iteration": 0}, d / "cnn14_16k.pth")
    torch.save(VGGish().state_dict(), d / "vggish.pth")
    return d / "cnn14_16k.pth", d / "vggish.pth"


def evaluate_cfg(panns, vggish):
    return OmegaConf.create(
        {
            "evaluate": {
                "seed": 0,
                "panns": {"weights": str(panns), "is_splits": 10, "is_seed": 2020},
                "vggish": {"weights": str(vggish), "is_splits": 10},
            }
        }
    )


@pytest.mark.slow  # Cnn14 forwards (80M parameters)
def test_media_metrics_panns_and_vggish_end_to_end(stand_in_weights):
    torch.set_num_threads(1)
    rate, n, seconds = 22050, 6, 1.1  # resampled to 16 kHz; one VGGish example per clip
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    tone = lambda f: (0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)  # noqa: E731
    reference = {
        "video": [np.zeros((2, 3, 8, 8), np.float32)] * n,
        "audio": [tone(440 * (1 + i / 10)) for i in range(n)],
    }
    generated = {"video": reference["video"], "audio": [tone(900 + 50 * i) + 0.2 for i in range(n)]}  # with DC
    cfg = evaluate_cfg(*stand_in_weights)
    features: dict = {}
    out = media_metrics(["panns", "vggish"], generated, reference, cfg, fps=8.0, sample_rate=rate, features=features)
    for name in ("fd_panns", "is_panns", "fd_vggish"):
        lo, hi = out["intervals"][name]
        assert np.isfinite(out[name]) and lo <= out[name] <= hi, name
        protocol = out["protocol"][name]
        assert protocol["extractor"]["sha256"] and protocol["scale"] == 1 and protocol["num_samples"] == n, name
    assert out["protocol"]["fd_panns"]["model_rate"] == 16000 and out["protocol"]["fd_vggish"]["model_rate"] == 16000
    assert out["protocol"]["is_panns"]["splits"] == n  # fewer clips than av-benchmark's 10 splits
    assert out["fd_panns"] > 0 and out["fd_vggish"] > 0 and out["is_panns"] >= 1.0
    assert "kl_panns" not in out  # joint samples are not paired with the reference clips
    assert not any(k.startswith("kd_") for k in out)
    assert features["fd_vggish"]["generated"].shape == (n, 1, 128)
    assert features["fd_panns"]["reference"].shape == (n, 1, 2048)


@pytest.mark.slow  # Cnn14 forwards (80M parameters)
def test_paired_kl_panns_and_its_v2a_names(stand_in_weights):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    real = [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(5)]
    fake = [w + rng.standard_normal(16000).astype(np.float32) * 0.05 for w in real]
    cfg = evaluate_cfg(*stand_in_weights)
    common = {"num_samples": 5, "sample_rate": 16000}
    out = audio_classifier_metrics(["panns"], fake, real, cfg, 16000, common, paired=True)
    lo, hi = out["intervals"]["kl_panns"]
    assert out["kl_panns"] >= 0 and lo <= out["kl_panns"] <= hi
    assert out["protocol"]["kl_panns"]["direction"].startswith("KL(reference || generated)")
    same = audio_classifier_metrics(["panns"], real, real, cfg, 16000, common, paired=True)
    assert same["kl_panns"] == pytest.approx(0.0, abs=1e-9)
    v2a = prefixed(out, "v2a_")
    assert {"v2a_kl_panns", "v2a_fd_panns", "v2a_is_panns"} <= set(v2a) and "v2a_kl_panns" in v2a["intervals"]
