"""FAD on AudioCLIP (MM-Diffusion's and JavisBench's "FAD"): the audio encoder in the public checkpoint's `audio.`
layout, its fbsp front end and forward against a transcription of the reference with the same random weights, the
distance and its x1e4 scale against a transcription of the references' FAD code, and the metric end to end with
randomly initialised stand-in weights (reduced depth in the fast tier, the published size in the slow one)."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from avgen.config import load_config
from avgen.evaluation.media_scores import audio_classifier_metrics, media_metrics
from avgen.evaluation.plan import metric_plan
from avgen.metrics.audioclip_fad import REPORTED_SCALE, reference_estimator, thresholded_sqrt
from avgen.metrics.extractors import load_audioclip
from avgen.metrics.frechet import frechet_distance, gaussian_stats
from avgen.models.audioclip import ESResNeXtFBSP, audio_state, frames
from avgen.weights.registry import REGISTRY
from tests.reference import audio_checkpoint_layouts as layouts
from tests.reference import audioclip_esresnext as reference

SMALL = {"layers": (1, 1, 1, 1), "embed_dim": 256}  # the published widths and grouping, one bottleneck per stage
REF_SMALL = {"layers": (1, 1, 1, 1), "num_classes": 256}  # the same in the transcription's arguments


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def randomised(net: ESResNeXtFBSP, seed: int = 0) -> ESResNeXtFBSP:
    """Trained-looking random state: fbsp parameters away from their init (m = 0 makes the window flat),
    BatchNorm statistics and affine parameters off the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        n = net.fbsp.m.numel()
        net.fbsp.m.copy_(0.3 + 1.7 * torch.rand(n, generator=g))
        net.fbsp.fb.copy_(0.5 + 2.5 * torch.rand(n, generator=g))
        net.fbsp.fc.add_(torch.randn(n, generator=g))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.5 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
    return net.eval()


def reference_with(net: ESResNeXtFBSP, **kwargs) -> torch.nn.Module:
    """The transcribed reference with `net`'s weights (strict)."""
    ref = reference.ESResNeXtFBSP(**kwargs)
    ref.load_state_dict(net.state_dict(), strict=True)
    return ref.eval()


def full_checkpoint(net: ESResNeXtFBSP) -> dict[str, torch.Tensor]:
    """A stand-in for AudioCLIP-Full-Training.pt: the audio encoder under `audio.`, beside (a few of) CLIP's
    image and text entries and the logit scales, which the loader must ignore."""
    return {
        "logit_scale": torch.tensor(4.6),
        "logit_scale_ai": torch.tensor(4.6),
        "logit_scale_at": torch.tensor(4.6),
        "visual.conv1.weight": torch.zeros(32, 3, 3, 3),
        "token_embedding.weight": torch.zeros(8, 4),
        **{f"audio.{k}": v for k, v in net.state_dict().items()},
    }


def test_audio_encoder_has_the_public_checkpoint_audio_layout():
    with torch.device("meta"):  # shapes only
        net, ref = ESResNeXtFBSP(), reference.ESResNeXtFBSP()
    assert shapes(net) == layouts.AUDIOCLIP_AUDIO  # the `audio.` entries of AudioCLIP-Full-Training.pt
    assert shapes(ref) == layouts.AUDIOCLIP_AUDIO and list(shapes(net)) == list(shapes(ref))
    assert len(layouts.AUDIOCLIP_AUDIO) == 370 and layouts.AUDIOCLIP_AUDIO["fbsp.bias"] == (0,)
    with torch.device("meta"):
        small = ESResNeXtFBSP(**SMALL)
    assert shapes(small) == layouts.audioclip_audio_layout(SMALL["layers"], embed=256)


def test_random_init_round_trips_strictly_through_the_full_checkpoint(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = randomised(ESResNeXtFBSP())
    fresh = ESResNeXtFBSP()
    fresh.load_state_dict(net.state_dict(), strict=True)
    torch.save(full_checkpoint(net), tmp_path / "AudioCLIP-Full-Training.pt")
    loaded = load_audioclip(tmp_path / "AudioCLIP-Full-Training.pt", 44100)
    assert shapes(loaded.net) == layouts.AUDIOCLIP_AUDIO
    for (k, a), b in zip(net.state_dict().items(), loaded.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not loaded.net.training
    # the audio sub-dict only; a bare encoder state dict passes as it is
    assert set(audio_state(full_checkpoint(net))) == set(net.state_dict())
    assert audio_state(net.state_dict()).keys() == net.state_dict().keys()


def test_loader_names_what_is_wrong(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="evaluate.audioclip.weights: .* not an AudioCLIP checkpoint"):
        load_audioclip(tmp_path / "other.pt", 16000)
    state = ESResNeXtFBSP(**SMALL).state_dict()
    torch.save(state, tmp_path / "small.pt")
    with pytest.raises(ValueError, match="batch_norm"):
        load_audioclip(tmp_path / "small.pt", 16000, batch_norm="train")
    del state["att5.bn.running_var"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing \['att5.bn.running_var'\]"):
        load_audioclip(tmp_path / "partial.pt", 16000)


@pytest.mark.parametrize("samples", [1000, 1654, 13_000, 70_560])  # < a frame, one frame, odd, MM-Diffusion's 1.6 s
def test_fbsp_front_end_matches_the_reference(samples):
    torch.set_num_threads(1)
    net = randomised(ESResNeXtFBSP(**SMALL))
    ref = reference_with(net, **REF_SMALL)
    wave = torch.randn(2, samples, generator=torch.Generator().manual_seed(samples)) * 0.3
    window = ref.window
    ours_frames = frames(wave, window)
    expected_frames = reference.frame_signal(wave, 1654, 561, window)
    assert torch.equal(ours_frames, expected_frames)
    with torch.no_grad():
        re, im = net.fbsp.filters(2048, torch.float32, torch.device("cpu"))
        weights, _ = ref.fbsp._materialize_weights(torch.zeros(1, 2048))
        torch.testing.assert_close(re, weights[..., 0], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(im, weights[..., 1], rtol=1e-5, atol=1e-7)
        ours, expected = net.log_power(wave), ref._forward_pre_processing(wave)
    assert ours.shape == expected.shape == (2, 1, 3, 341, expected.shape[-1])
    assert expected.std() > 1.0  # a spectrogram in dB (about -110 dB: [-1, 1] waves read as int16 values)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=2e-3)


def test_forward_matches_the_reference():
    """Same random weights in ours and the transcription: mono (B, S), (B, 1, S) and two-channel (B, 2, S) input
    (channels embedded separately and summed), at the published size and at reduced depth."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    for ours_args, ref_args, dim in ((SMALL, REF_SMALL, 256), ({}, {}, 1024)):
        net = randomised(ESResNeXtFBSP(**ours_args))
        ref = reference_with(net, **ref_args)
        for wave in (torch.randn(2, 9000, generator=g) * 0.3, torch.randn(2, 2, 6000, generator=g) * 0.3):
            with torch.no_grad():
                ours, expected = net(wave), ref(wave)
            assert ours.shape == (2, dim) and expected.std() > 1e-3
            torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(net(wave[:, :1]), net(wave[:, 0]))


def test_forward_matches_the_reference_in_float64():
    """On tonal clips (a spectrogram down to about -170 dB, where float32 rounding shows) in float64: the dB
    spectrogram and the embeddings of ours and the transcription agree to 1e-9."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = randomised(ESResNeXtFBSP(**SMALL))
    ref = reference_with(net, **REF_SMALL).double()
    net = net.double()
    wave = torch.from_numpy(np.stack(clips(np.random.default_rng(0), 2, 44100, 0.2))).double()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the reference casts its input to the default dtype
    try:
        with torch.no_grad():
            ours_db, expected_db = net.log_power(wave), ref._forward_pre_processing(wave)
            ours, expected = net(wave), ref(wave)
    finally:
        torch.set_default_dtype(default)
    assert expected_db.min() < -150 and ours.dtype == torch.float64
    torch.testing.assert_close(ours_db, expected_db, rtol=0, atol=1e-9)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-9 * float(expected.abs().max()))


def test_fad_and_its_scale_equal_the_references():
    """avgen's Fréchet distance (float64, Cholesky / eigh) of embeddings, times 1e4, against the transcription of
    MM-Diffusion's `frechet_distance(fake, real) * 10000` where every eigenvalue product clears its 1e-10 SVD
    threshold; below it (small embeddings) the references' estimator exceeds the distance, and
    `reference_estimator` reproduces it."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(64, 64, generator=g, dtype=torch.float64) / 4
    for n, d, scale in ((400, 64, 1.0), (300, 128, 0.1), (48, 256, 1.0)):  # more clips than dimensions, and fewer
        real = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.block_diag(*[mix] * (d // 64)) * scale
        fake = (torch.randn(n + 7, d, generator=g, dtype=torch.float64) + 0.3) * scale * 0.9
        ours = float(frechet_distance(*gaussian_stats(fake), *gaussian_stats(real)))
        expected = reference.reported_fad(fake, real)
        assert ours * REPORTED_SCALE == pytest.approx(expected, rel=1e-6 if n > d else 1e-3), (n, d)
        assert reference_estimator(fake, real) == pytest.approx(expected, rel=1e-9), (n, d)
    assert REPORTED_SCALE == 10000
    small = torch.randn(300, 64, generator=g, dtype=torch.float64) * 1e-3  # eigenvalue products about 1e-12
    shifted = torch.randn(300, 64, generator=g, dtype=torch.float64) * 1e-3 + 1e-4
    exact = float(frechet_distance(*gaussian_stats(shifted), *gaussian_stats(small))) * REPORTED_SCALE
    printed = reference.reported_fad(shifted, small)
    assert printed > 5 * exact  # the references' unrooted small singular values
    assert reference_estimator(shifted, small) == pytest.approx(printed, rel=1e-9)
    m = torch.diag(torch.tensor([4.0, 1e-12], dtype=torch.float64))
    torch.testing.assert_close(thresholded_sqrt(m), torch.diag(torch.tensor([2.0, 1e-12], dtype=torch.float64)))


def evaluate_cfg(weights, **section) -> OmegaConf:
    audioclip = {"weights": str(weights), "model_rate": 44100, "seconds": None, "batch_norm": "eval", **section}
    return OmegaConf.create({"evaluate": {"seed": 0, "audioclip": audioclip}})


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    """Reduced-depth stand-in weights, written as a full AudioCLIP checkpoint."""
    path = tmp_path_factory.mktemp("weights") / "AudioCLIP-Full-Training.pt"
    torch.manual_seed(0)
    torch.save(full_checkpoint(randomised(ESResNeXtFBSP(**SMALL))), path)
    return path


def clips(rng, n: int, rate: int, seconds: float, shift: float = 0.0) -> list[np.ndarray]:
    t = np.arange(int(rate * seconds)) / rate
    return [
        (0.2 * np.sin(2 * np.pi * (200 + 150 * i + shift) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
        for i in range(n)
    ]


def test_metric_end_to_end_equals_the_reference_pipeline(small_weights):
    """fad_audioclip through audio_classifier_metrics (16 kHz clips resampled to 44.1 kHz, cut or zero-padded to
    0.3 s) against the transcribed encoder and MM-Diffusion's FAD code on the same waves: scale 1, and x1e4."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, rate = 5, 16000
    real, fake = clips(rng, n, rate, 0.35), clips(rng, n, rate, 0.2, shift=40.0)  # fake: shorter, zero-padded
    cfg = evaluate_cfg(small_weights, seconds=0.3)
    common = {"num_samples": n, "num_reference": n, "sample_rate": rate}
    features: dict = {}
    out = audio_classifier_metrics(["audioclip"], fake, real, cfg, rate, common, features)

    ref = reference_with(load_audioclip(small_weights, rate).net, **REF_SMALL)
    size = int(0.3 * 44100)

    def embed(waves):  # MM-Diffusion's loader: the first 1.6 s (here 0.3 s), zeros after a shorter clip
        x = librosa.resample(np.stack(waves), orig_sr=rate, target_sr=44100, axis=-1)
        fitted = np.zeros((len(waves), 1, size), np.float32)
        fitted[:, :, : min(size, x.shape[-1])] = x[:, None, :size]
        with torch.no_grad():
            return ref(torch.from_numpy(fitted))

    real_emb, fake_emb = embed(real), embed(fake)
    kept = features["fad_audioclip"]  # the metric's embeddings: those of the reference pipeline
    assert fake_emb.std() > 1e-3 and kept["reference"].shape == (n, 1, 256)
    # float32 rounding of the lowest-power bins (tonal clips span about -170 to -75 dB) differs with the batching;
    # in float64 the two encoders agree to 1e-12 (test_forward_matches_the_reference_in_float64)
    for ours, expected in ((kept["reference"][:, 0], real_emb), (kept["generated"][:, 0], fake_emb)):
        torch.testing.assert_close(ours, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))
    printed = reference.reported_fad(kept["generated"][:, 0].double(), kept["reference"][:, 0].double())
    estimated = "fad_audioclip_x1e4_reference_estimator"
    assert out[estimated] == pytest.approx(printed, rel=1e-9)
    assert out["protocol"][estimated]["scale"] == 10000 and estimated not in out["intervals"]
    assert "reference_estimator" not in json.dumps(out["protocol"]["fad_audioclip_x1e4"])  # no per-run values
    # the Fréchet distance; with 5 clips in 256 dimensions the references' unrooted near-zero singular values of
    # the rank-4 covariances move their estimator a little
    assert out["fad_audioclip_x1e4"] == pytest.approx(printed, rel=1e-3) and printed > 0
    assert out["fad_audioclip"] * 1e4 == pytest.approx(out["fad_audioclip_x1e4"], rel=1e-12)
    for name, scale in (("fad_audioclip", 1), ("fad_audioclip_x1e4", 10000)):
        lo, hi = out["intervals"][name]
        assert lo <= out[name] <= hi, name
        protocol = out["protocol"][name]
        assert protocol["scale"] == scale and protocol["model_rate"] == 44100 and protocol["extractor"]["sha256"]
        assert protocol["batch_norm"] == "eval" and "first 0.3 s" in protocol["window"]
    assert out["intervals"]["fad_audioclip_x1e4"][1] == pytest.approx(1e4 * out["intervals"]["fad_audioclip"][1])
    assert not any(k.startswith("kad") for k in out) and "kl_audioclip" not in out


def test_batch_statistics_as_mm_diffusion_leave_the_weights_alone(small_weights):
    """batch_norm=batch: each batch of 8 clips normalised by its own statistics (MM-Diffusion never calls .eval());
    the reference in train mode on the same batches gives the same embeddings, and the loaded running statistics
    are not updated."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    waves = torch.from_numpy(np.stack(clips(rng, 10, 44100, 0.3)))
    extractor = load_audioclip(small_weights, 44100, batch_norm="batch")
    before = {k: v.clone() for k, v in extractor.net.state_dict().items()}
    ours = extractor(waves)
    ref = reference_with(extractor.net, **REF_SMALL).train()
    with torch.no_grad():
        expected = torch.cat([ref(chunk) for chunk in waves.split(8)])
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    for k, v in extractor.net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not extractor.net.training and all(not m.training for m in extractor.net.modules())
    eval_mode = load_audioclip(small_weights, 44100)(waves)
    assert not torch.allclose(eval_mode, ours)  # a different feature space: protocol.batch_norm names it
    with pytest.raises(ValueError, match="a batch of one clip"):
        extractor(waves[:9])  # 8 + 1


def test_media_metrics_audioclip_joint(small_weights):
    torch.set_num_threads(1)
    rng = np.random.default_rng(2)
    rate, n = 22050, 4
    video = [np.zeros((2, 3, 8, 8), np.float32)] * n
    features: dict = {}
    out = media_metrics(
        ["audioclip"],
        {"video": video, "audio": clips(rng, n, rate, 0.3, shift=25.0)},
        {"video": video, "audio": clips(rng, n, rate, 0.3)},
        evaluate_cfg(small_weights),
        fps=8.0,
        sample_rate=rate,
        features=features,
    )
    assert {"fad_audioclip", "fad_audioclip_x1e4"} <= set(out) and np.isfinite(out["fad_audioclip"])
    assert out["protocol"]["fad_audioclip"]["window"].startswith("the whole clip")
    assert features["fad_audioclip"]["generated"].shape == (n, 1, 256)  # the stand-in's embedding size


def test_audioclip_is_a_weighted_metric_of_the_config():
    cfg = load_config("train")
    section = cfg.evaluate.audioclip
    assert section.weights is None and section.model_rate == 44100 and section.batch_norm == "eval"
    assert "audioclip" not in metric_plan(cfg, "landscape")  # auto: only with weights
    section.weights = "audioclip-full-training"
    assert "audioclip" in metric_plan(cfg, "landscape")
    section.weights = None
    cfg.evaluate.metrics = ["audioclip"]
    with pytest.raises(ValueError, match="evaluate.audioclip.weights"):
        metric_plan(cfg, "landscape")
    entry = REGISTRY["audioclip-full-training"]
    assert entry.url == "https://github.com/AndreyGuzhov/AudioCLIP/releases/download/v0.1/AudioCLIP-Full-Training.pt"
    assert not entry.sha256  # none published for the release asset: recorded on first use


@pytest.mark.slow  # published-size forwards on MM-Diffusion's 1.6 s at 44.1 kHz and JavisBench's 4 s at 16 kHz
def test_forward_matches_the_reference_on_the_references_clip_lengths():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = randomised(ESResNeXtFBSP())
    ref = reference_with(net)
    g = torch.Generator().manual_seed(3)
    for samples in (int(44100 * 1.6), 16000 * 4):
        wave = torch.randn(2, 1, samples, generator=g) * 0.3
        with torch.no_grad():
            torch.testing.assert_close(net(wave), ref(wave), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # published-size stand-in: a 100 MB checkpoint, the metric on 1.6 s clips
def test_published_size_stand_in_scores(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.save(full_checkpoint(randomised(ESResNeXtFBSP())), tmp_path / "AudioCLIP-Full-Training.pt")
    rng = np.random.default_rng(3)
    real, fake = clips(rng, 4, 44100, 1.6), clips(rng, 4, 44100, 1.6, shift=30.0)
    cfg = evaluate_cfg(tmp_path / "AudioCLIP-Full-Training.pt", seconds=1.6)
    out = audio_classifier_metrics(["audioclip"], fake, real, cfg, 44100, {"num_samples": 4})
    assert out["fad_audioclip"] > 0 and out["fad_audioclip_x1e4"] == pytest.approx(1e4 * out["fad_audioclip"])
    same = audio_classifier_metrics(["audioclip"], real, real, cfg, 44100, {"num_samples": 4})
    assert same["fad_audioclip"] == pytest.approx(0.0, abs=1e-9)
