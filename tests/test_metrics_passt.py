"""PaSST (av-benchmark's FD-PaSST, KL-PaSST, IS-PaSST): the public checkpoint's layout, the mel front end and
the forward against a transcription of hear21passt as av-benchmark runs it, and the metrics end to end with
randomly initialised stand-in weights (reduced widths in the fast tier, the published size in the slow one)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from avgen.config import load_config
from avgen.evaluation.media_scores import audio_classifier_metrics, media_metrics, prefixed
from avgen.evaluation.plan import metric_plan
from avgen.metrics.extractors import load_passt
from avgen.models.passt import CLIP_SAMPLES, MelFrontEnd, PaSST, checkpoint_state, fit_clip, kaldi_mel_banks
from tests.reference import audio_checkpoint_layouts as layouts
from tests.reference import passt_hear21 as reference
from tests.reference.av_benchmark_scores import compute_isc, compute_kl

SMALL = {"embed_dim": 64, "depth": 2, "num_classes": 10}  # the published layout at reduced width


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def small_reference(net: PaSST) -> torch.nn.Module:
    """The transcribed reference with `net`'s weights (strict)."""
    ref = reference.get_basic_model(SMALL["embed_dim"], SMALL["depth"], 1, SMALL["num_classes"])
    ref.net.load_state_dict(net.state_dict(), strict=True)
    return ref


def test_passt_has_the_public_checkpoint_layout():
    with torch.device("meta"):  # shapes only: no 86M-parameter initialisation
        net, ref = PaSST(), reference.get_basic_model().net
    assert shapes(net) == layouts.PASST_S  # the names and shapes of passt-s-f128-p16-s10-ap.476-swa.pt
    assert shapes(ref) == layouts.PASST_S
    assert not any(k.startswith("mel.") for k in net.state_dict())  # the front end is built, not loaded
    missing, unexpected = PaSST(**SMALL).load_state_dict(small_reference(PaSST(**SMALL)).net.state_dict())
    assert not missing and not unexpected


def test_loader_reads_checkpoints_as_the_reference_does(tmp_path):
    torch.manual_seed(0)
    net = PaSST(**SMALL)
    assert shapes(net) == layouts.passt_layout(64, 2, 10)
    torch.save(net.state_dict(), tmp_path / "passt.pt")
    loaded = load_passt(tmp_path / "passt.pt", 16000)
    assert loaded.net.sample_rate == 32000 and len(loaded.net.blocks) == 2
    for (k, a), b in zip(net.state_dict().items(), loaded.net.state_dict().values()):
        assert torch.equal(a, b), k
    # the reference's checkpoint filter: a `model` entry unwrapped, a flattened patch projection reshaped
    state = {**net.state_dict(), "patch_embed.proj.weight": net.patch_embed.proj.weight.flatten(1)}
    torch.save({"model": state}, tmp_path / "wrapped.pt")
    assert torch.equal(
        load_passt(tmp_path / "wrapped.pt", 32000).net.patch_embed.proj.weight, net.patch_embed.proj.weight
    )
    rgb = net.patch_embed.proj.weight.repeat(1, 3, 1, 1) / 3  # timm's adapt_input_conv: summed to one channel
    torch.testing.assert_close(
        checkpoint_state({"patch_embed.proj.weight": rgb})["patch_embed.proj.weight"], 3 * rgb[:, :1]
    )


def test_loader_names_what_is_wrong(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="evaluate.passt.weights: .* not a PaSST state dict"):
        load_passt(tmp_path / "other.pt", 32000)
    twenty = PaSST(**SMALL, input_size=(128, 1998)).state_dict()  # the 20 s model's longer time grid
    torch.save(twenty, tmp_path / "passt20.pt")
    with pytest.raises(ValueError, match=r"published 10 s, 128-bin layout.*time_new_pos_embed"):
        load_passt(tmp_path / "passt20.pt", 32000)


def test_mel_banks_are_kaldis():
    expected, _ = reference.get_mel_banks(128, 1024, 32000, 0.0, 15000.0, 100.0, -500.0, 1.0)
    ours = kaldi_mel_banks()
    assert ours.shape == (128, 513) and not ours[:, -1].any()
    np.testing.assert_allclose(ours[:, :512], expected.numpy(), rtol=0, atol=2e-5)  # the reference is float32
    assert reference.get_basic_model(64, 1, 1, 10).mel.fmax == 15000  # sr / 2 - fmax_aug_range / 2


@pytest.mark.parametrize("samples", [CLIP_SAMPLES, 41_234])
def test_front_end_matches_the_reference(samples):
    wave = torch.randn(2, samples, generator=torch.Generator().manual_seed(0)) * 0.1
    ref = reference.get_basic_model(64, 1, 1, 10).mel.eval()
    with torch.no_grad():
        ours, expected = MelFrontEnd()(wave), ref(wave)
    assert ours.shape == expected.shape == (2, 128, 1 + (samples - 1) // 320)
    assert expected.std() > 0.1
    torch.testing.assert_close(ours, expected, rtol=0, atol=2e-4)


def test_forward_matches_the_reference_at_reduced_width():
    """Same random weights in ours and the transcription, av-benchmark's 10 s padding and cutting included."""
    torch.manual_seed(0)
    net = PaSST(**SMALL).eval()
    ref = small_reference(net)
    g = torch.Generator().manual_seed(1)
    for seconds in (3.0, 11.5):  # zero-padded to 10 s; cut to its first 10 s
        wave = torch.randn(2, int(32000 * seconds), generator=g) * 0.1
        with torch.no_grad():
            out = net(fit_clip(wave))
            logits, embedding = reference.av_benchmark_passt(ref, wave, num_classes=10)
        assert out["embedding"].shape == (2, 64) and out["logits"].shape == (2, 10)
        torch.testing.assert_close(out["embedding"], embedding, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out["logits"], logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out["probabilities"], logits.sigmoid(), rtol=1e-4, atol=1e-6)


def test_extractor_centres_resamples_and_fits_each_clip(tmp_path):
    torch.manual_seed(0)
    net = PaSST(**SMALL).eval()
    torch.save(net.state_dict(), tmp_path / "passt.pt")
    extractor = load_passt(tmp_path / "passt.pt", 16000)
    wave = np.random.default_rng(0).standard_normal((2, 16000 * 2)).astype(np.float32) * 0.1 + 0.3  # with DC
    expected = librosa.resample(wave - wave.mean(1, keepdims=True), orig_sr=16000, target_sr=32000, axis=-1)
    with torch.no_grad():
        direct = net(fit_clip(torch.from_numpy(expected)))
    out = extractor(torch.from_numpy(wave))
    for k in ("embedding", "logits"):
        torch.testing.assert_close(out[k], direct[k])


def evaluate_cfg(passt) -> OmegaConf:
    return OmegaConf.create(
        {"evaluate": {"seed": 0, "passt": {"weights": str(passt), "is_splits": 10, "is_seed": 2020}}}
    )


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    """Reduced-width stand-in weights whose logits spread (std about 1, not the init's 0.02)."""
    path = tmp_path_factory.mktemp("weights") / "passt_small.pt"
    torch.manual_seed(0)
    net = PaSST(**SMALL)
    torch.nn.init.normal_(net.head[1].weight, std=1.0)
    torch.save(net.state_dict(), path)
    return path


def test_metrics_end_to_end_equal_av_benchmarks_formulas(small_weights):
    """fd/is (joint) and kl (paired) through audio_classifier_metrics, against av-benchmark's isc.py / kl.py on
    the same extractor's logits."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, rate = 12, 16000
    real = [rng.standard_normal(rate).astype(np.float32) * 0.1 for _ in range(n)]
    t = np.arange(rate) / rate
    fake = [(0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32) + w * 0.5 for i, w in enumerate(real)]
    cfg = evaluate_cfg(small_weights)
    common = {"num_samples": n, "sample_rate": rate}
    out = audio_classifier_metrics(["passt"], fake, real, cfg, rate, common, paired=True)
    extractor = load_passt(small_weights, rate)
    fake_logits = extractor(torch.from_numpy(np.stack(fake)))["logits"]
    assert fake_logits.std() > 0.3
    real_logits = extractor(torch.from_numpy(np.stack(real)))["logits"]
    isc = compute_isc(fake_logits, None, rng_seed=2020, samples_shuffle=True, splits=10)
    assert out["is_passt"] == pytest.approx(isc["inception_score_mean"], rel=1e-5)
    assert out["is_passt_std"] == pytest.approx(isc["inception_score_std"], rel=1e-4, abs=1e-7)
    kl = compute_kl([fake_logits.double()], real_logits.double())["kl_softmax"]  # ours is in float64
    assert out["kl_passt"] == pytest.approx(kl, rel=1e-6) and kl > 1e-4
    for name in ("fd_passt", "is_passt", "kl_passt"):
        lo, hi = out["intervals"][name]
        assert np.isfinite(out[name]) and lo <= out[name] <= hi, name
        assert out["protocol"][name]["model_rate"] == 32000 and out["protocol"][name]["extractor"]["sha256"], name
    assert out["fd_passt"] > 0 and out["protocol"]["kl_passt"]["direction"].startswith("KL(reference || generated)")
    assert out["protocol"]["is_passt"]["splits"] == 10 and "first 10 s" in out["protocol"]["fd_passt"]["window"]
    v2a = prefixed(out, "v2a_")
    assert {"v2a_fd_passt", "v2a_kl_passt", "v2a_is_passt"} <= set(v2a) and "v2a_kl_passt" in v2a["intervals"]


def test_media_metrics_passt_joint(small_weights):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    rate, n = 22050, 4
    audio = lambda: [rng.standard_normal(int(rate * 1.5)).astype(np.float32) * 0.1 for _ in range(n)]  # noqa: E731
    video = [np.zeros((2, 3, 8, 8), np.float32)] * n
    features: dict = {}
    out = media_metrics(
        ["passt"],
        {"video": video, "audio": audio()},
        {"video": video, "audio": audio()},
        evaluate_cfg(small_weights),
        fps=8.0,
        sample_rate=rate,
        features=features,
    )
    assert {"fd_passt", "is_passt", "is_passt_std"} <= set(out) and "kl_passt" not in out  # joint: unpaired
    assert out["protocol"]["is_passt"]["splits"] == n  # fewer clips than av-benchmark's 10 splits
    assert features["fd_passt"]["generated"].shape == (n, 1, 64)


def test_passt_is_a_weighted_metric_of_the_config():
    cfg = load_config("train")
    assert cfg.evaluate.passt.weights is None and cfg.evaluate.passt.is_splits == 10
    assert "passt" not in metric_plan(cfg, "landscape")  # auto: only with weights
    cfg.evaluate.passt.weights = "passt-s-ap476-swa"
    assert "passt" in metric_plan(cfg, "landscape")
    cfg.evaluate.passt.weights = None
    cfg.evaluate.metrics = ["passt"]
    with pytest.raises(ValueError, match="evaluate.passt.weights"):
        metric_plan(cfg, "landscape")


@pytest.mark.slow  # published-size PaSST forwards (86M parameters, 1190 tokens)
def test_forward_matches_the_reference_at_the_published_size():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = PaSST().eval()
    ref = reference.get_basic_model()
    ref.net.load_state_dict(net.state_dict(), strict=True)
    wave = torch.randn(2, 32000 * 8, generator=torch.Generator().manual_seed(1)) * 0.1  # av-benchmark's 8 s clips
    with torch.no_grad():
        out = net(fit_clip(wave))
        logits, embedding = reference.av_benchmark_passt(ref, wave)
    assert out["embedding"].shape == (2, 768) and out["logits"].shape == (2, 527)
    torch.testing.assert_close(out["embedding"], embedding, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["logits"], logits, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # published-size PaSST: a 350 MB checkpoint and forwards
def test_published_size_stand_in_round_trips_and_scores(tmp_path):
    """A randomly initialised PaSST of the published size: strict round trip through the file and the loader,
    then the three metrics."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = PaSST()
    fresh = PaSST()
    fresh.load_state_dict(net.state_dict(), strict=True)
    torch.save(net.state_dict(), tmp_path / "passt.pt")
    loaded = load_passt(tmp_path / "passt.pt", 16000)
    for (k, a), b in zip(net.state_dict().items(), loaded.net.state_dict().values()):
        assert torch.equal(a, b), k
    rng = np.random.default_rng(2)
    real = [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(3)]
    fake = [w + rng.standard_normal(16000).astype(np.float32) * 0.05 for w in real]
    cfg = evaluate_cfg(tmp_path / "passt.pt")
    out = audio_classifier_metrics(["passt"], fake, real, cfg, 16000, {"num_samples": 3}, paired=True)
    assert out["kl_passt"] >= 0 and out["is_passt"] >= 1.0 and np.isfinite(out["fd_passt"])
    same = audio_classifier_metrics(["passt"], real, real, cfg, 16000, {"num_samples": 3}, paired=True)
    assert same["kl_passt"] == pytest.approx(0.0, abs=1e-9)
