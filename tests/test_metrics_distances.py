"""FVD / KVD / FAD / ImageBind: closed forms, stand-in feature networks built from config, local loading."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from avgen.metrics.extractors import load_audio_embedding, load_imagebind, load_video_features, video_clips_for_i3d
from avgen.metrics.frechet import (
    FeatureDistances,
    SubsetFrechet,
    SubsetKernel,
    frechet_distance,
    gaussian_stats,
    kernel_distance,
    polynomial_mmd,
)
from avgen.metrics.imagebind import ImageBindScore
from avgen.models.i3d import InceptionI3d


def test_frechet_distance_matches_scipy_sqrtm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 6, generator=g), torch.randn(300, 6, generator=g) @ torch.randn(6, 6, generator=g) + 1
    (mu1, c1), (mu2, c2) = gaussian_stats(a), gaussian_stats(b)
    covmean = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(c1.numpy() + c2.numpy() - 2 * covmean)
    assert frechet_distance(mu1, c1, mu2, c2).item() == pytest.approx(expected, rel=1e-6)
    # equal covariances: only the squared mean difference remains
    assert frechet_distance(mu1, c1, mu1 + 2, c1).item() == pytest.approx(4 * 6, rel=1e-6)
    # fewer samples than dimensions: a singular covariance first (no Cholesky factor)
    (mu3, c3), (mu4, c4) = gaussian_stats(a[:4]), gaussian_stats(b)
    covmean = scipy.linalg.sqrtm(c3.numpy() @ c4.numpy()).real
    expected = ((mu3 - mu4) ** 2).sum().item() + np.trace(c3.numpy() + c4.numpy() - 2 * covmean)
    assert frechet_distance(mu3, c3, mu4, c4).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dim", [3, 40])  # moments downdated (frames >> d) | Gram matrices (d >= frames)
def test_subset_frechet_equals_the_fd_of_the_kept_clips(dim):
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(30, 2, dim, generator=g), torch.randn(25, 2, dim, generator=g) * 1.3 + 0.2  # (N, n, d)
    keep_r, keep_f = torch.rand(30, generator=g) > 0.3, torch.rand(25, generator=g) > 0.3
    subset = SubsetFrechet(real, fake)
    assert subset.use_gram == (dim == 40)
    direct = frechet_distance(*gaussian_stats(real[keep_r].flatten(0, 1)), *gaussian_stats(fake[keep_f].flatten(0, 1)))
    assert subset(keep_r, keep_f) == pytest.approx(direct.item(), rel=1e-7)


def test_subset_kernel_equals_the_published_kernel_distance():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(60, 5, generator=g), torch.randn(50, 5, generator=g) + 0.3
    subset = SubsetKernel(real, fake)
    mean, std = kernel_distance(real, fake, subsets=7, subset_size=40, seed=3)
    assert subset.over_subsets(7, 40, seed=3) == pytest.approx((mean.item(), std.item()), rel=1e-9)
    keep_r, keep_f = torch.arange(60) < 45, torch.arange(50) >= 5  # 45 kept of each
    complete = polynomial_mmd(real[:45].double(), fake[5:].double())
    assert subset(keep_r, keep_f) == pytest.approx(complete.item(), rel=1e-9)


def test_feature_distance_intervals_contain_their_values():
    g = torch.Generator().manual_seed(2)
    metric = FeatureDistances(lambda x: x, "fvd", kernel_subsets=5, kernel_subset_size=50)
    metric.update(torch.randn(50, 6, generator=g), real=True)
    metric.update(torch.randn(40, 6, generator=g) * 1.2 + 0.1, real=False)
    out = metric.compute()
    for name in ("fvd", "kvd"):
        lo, hi = out[f"{name}_interval"].tolist()
        assert lo <= out[name].item() <= hi and lo < hi, name
    assert {k: v.shape for k, v in metric.features().items()} == {"reference": (50, 1, 6), "generated": (40, 1, 6)}
    few = FeatureDistances(lambda x: x, "fvd", kernel_subsets=5)  # 3 clips: values, no intervals
    few.update(torch.randn(3, 6, generator=g), real=True), few.update(torch.randn(3, 6, generator=g), real=False)
    assert set(few.compute()) == {"fvd", "kvd", "kvd_std"}


def test_kernel_distance_separates_distributions():
    g = torch.Generator().manual_seed(0)
    x, y, z = (torch.randn(400, 8, generator=g) for _ in range(3))
    same, _ = kernel_distance(x, y, subsets=20, subset_size=100)
    shifted, _ = kernel_distance(x, z + 0.5, subsets=20, subset_size=100)
    assert abs(same.item()) < 0.05 < shifted.item()


def tiny_i3d(seed: int = 0) -> InceptionI3d:
    torch.manual_seed(seed)
    net = InceptionI3d(num_classes=8, width=1 / 16).eval()
    for m in net.modules():  # He init keeps activations O(1) through the stand-in's 20 layers
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net


def test_i3d_layout_and_size():
    keys = set(InceptionI3d().state_dict())
    for k in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Mixed_3b.b1b.bn.running_mean",
        "Mixed_5c.b3b.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert k in keys
    n = sum(p.numel() for p in InceptionI3d().parameters())
    assert 12.0e6 < n < 12.8e6  # the Kinetics-400 I3D has ~12.3M parameters
    assert tiny_i3d()(torch.zeros(2, 3, 16, 64, 64)).shape == (2, 8)


def test_i3d_clip_preprocessing():
    video = torch.rand(2, 20, 3, 48, 64)  # (B, T, 3, H, W) in [0, 1]
    x = video_clips_for_i3d(video, num_frames=16, size=32)
    assert x.shape == (2, 3, 16, 32, 32) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ValueError, match="16-frame"):
        video_clips_for_i3d(video[:, :8])


def moving_squares(n: int, seed: int, speed: float = 2.0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    v = np.zeros((n, 16, 3, 32, 32), np.float32)
    for i in range(n):
        x0, y0 = g.integers(0, 20, 2)
        for t in range(16):
            x = int(x0 + speed * t) % 24
            v[i, t, :, y0 : y0 + 8, x : x + 8] = 1.0
    return torch.from_numpy(v)


@pytest.mark.parametrize("scripted", [False, True])
def test_fvd_from_local_weights(tmp_path, scripted):
    net = tiny_i3d()
    if scripted:
        path = tmp_path / "i3d_torchscript.pt"
        traced = torch.jit.trace(net, torch.zeros(1, 3, 16, 32, 32))  # fixed input size, as the real export
        torch.jit.script(ScriptedI3D(traced)).save(str(path))
    else:
        path = tmp_path / "i3d.pt"
        torch.save(net.state_dict(), path)
    extractor = load_video_features(path, size=32, width=1 / 16, num_classes=8)
    real = moving_squares(24, seed=0)

    def fvd(fake):
        metric = FeatureDistances(extractor, "fvd", kernel_subsets=10, kernel_subset_size=24)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return {k: v.tolist() if k.endswith("_interval") else v.item() for k, v in metric.compute().items()}

    same, other = fvd(real), fvd(torch.rand_like(real))
    assert same["fvd"] == pytest.approx(0.0, abs=1e-6) and other["fvd"] > 1e-3
    assert other["kvd"] > same["kvd"]
    # intervals hold their value; noise is far from the set against itself
    lo, hi = other["fvd_interval"]
    assert lo <= other["fvd"] <= hi and lo > same["fvd_interval"][1]
    assert other["kvd_interval"][0] <= other["kvd"] <= other["kvd_interval"][1]
    # the features are the network's own: loading changed nothing
    assert torch.allclose(extractor(real[:2]), net(video_clips_for_i3d(real[:2], size=32)), atol=1e-5)


def test_fvd_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate.fvd.weights"):
        load_video_features(tmp_path / "nope.pt", key="evaluate.fvd.weights")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an I3D state dict"):
        load_video_features(tmp_path / "other.pt")


def test_feature_distances_merge_like_ddp():
    """Two processes' states concatenated (what the all-gather does) equal one process seeing everything."""
    proj = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    extractor = lambda x: x @ proj  # noqa: E731
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(40, 5, generator=g), torch.randn(40, 5, generator=g) + 0.3
    whole = FeatureDistances(extractor, kernel_subsets=5, kernel_subset_size=20)
    parts = [FeatureDistances(extractor, kernel_subsets=5, kernel_subset_size=20) for _ in range(2)]
    whole.update(real, True), whole.update(fake, False)
    for i, p in enumerate(parts):
        p.update(real[i::2], True), p.update(fake[i::2], False)
    parts[0].merge_state(parts[1])
    a, b = whole.compute(), parts[0].compute()
    assert a["fd"].item() == pytest.approx(b["fd"].item(), rel=1e-9)


def tone_clips(freqs, seconds=2.0, rate=16000, seed=0):
    g = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return torch.from_numpy(
        np.stack([0.5 * np.sin(2 * np.pi * f * t + g.uniform(0, 6)) for f in freqs]).astype(np.float32)
    )


def test_fad_with_a_local_clap_stand_in(tmp_path, tiny_clap):
    emb = load_audio_embedding(tiny_clap, sample_rate=16000, window_seconds=0.5)
    real = tone_clips([220, 330, 440, 550] * 3)
    out = emb(real[:2])
    assert out.shape[:2] == (2, 4)  # 2 s in 0.5 s windows -> 4 frame embeddings per clip

    def fad(fake):
        metric = FeatureDistances(emb, "fad", per_sample=True, kernel_subsets=5, bootstrap=50)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return {k: v.tolist() if k.endswith("_interval") else v.item() for k, v in metric.compute().items()}

    same, noise = fad(real), fad(torch.randn_like(real) * 0.3)
    assert same["fad"] == pytest.approx(0.0, abs=1e-6) and noise["fad"] > same["fad"] + 1e-4
    assert noise["fad_per_sample"] > same["fad_per_sample"]
    lo, hi = noise["fad_per_sample_interval"]  # a mean over clips: its percentile interval holds the value
    assert lo <= noise["fad_per_sample"] <= hi


def test_fad_loader_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without config.json"):
        load_audio_embedding(tmp_path / "empty", 16000)
    scripted = tmp_path / "vggish.pt"
    torch.jit.script(nn.Linear(4, 2)).save(str(scripted))
    with pytest.raises(ValueError, match="model_rate"):
        load_audio_embedding(scripted, 16000)


class Axis(nn.Module):
    """A stand-in encoder with a known answer: embeds anything as a fixed 2-d direction."""

    def __init__(self, angle: float):
        super().__init__()
        self.register_buffer("direction", torch.tensor([np.cos(angle), np.sin(angle)], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.direction.expand(x.shape[0], 2) * (1 + x.flatten(1).abs().mean(1, keepdim=True))


def test_imagebind_scores_from_local_torchscript(tmp_path):
    paths = {}
    for m, angle in (("video", 0.0), ("audio", np.pi / 3)):
        paths[m] = tmp_path / f"{m}.pt"
        torch.jit.script(Axis(angle)).save(str(paths[m]))
    metric = ImageBindScore(load_imagebind(paths), sample_rate=16000)
    metric.update(video=torch.rand(3, 4, 3, 8, 8), audio=torch.randn(3, 16000))
    assert metric.compute()["ib_av"].item() == pytest.approx(0.5, abs=1e-6)  # cos(60 degrees)
    with pytest.raises(KeyError, match="metrics.imagebind.text"):
        metric.update(video=torch.rand(1, 4, 3, 8, 8), text=["a dog barks"])
    paths["text"] = tmp_path / "text.pt"
    torch.jit.script(TextAxis(np.pi / 2)).save(str(paths["text"]))  # takes List[str], as the scripted export
    metric = ImageBindScore(load_imagebind(paths), sample_rate=16000)
    metric.update(video=torch.rand(2, 4, 3, 8, 8), audio=torch.randn(2, 16000), text=["a dog", "rain"])
    scores = {k: v.item() for k, v in metric.compute().items()}
    assert scores["ib_tv"] == pytest.approx(0.0, abs=1e-6) and scores["ib_ta"] == pytest.approx(np.cos(np.pi / 6))


class SignedAxis(nn.Module):
    """A stand-in audio encoder whose direction follows the clip's sign: matching audio 0 deg, other 180 deg."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sign = torch.sign(x.mean(1, keepdim=True))
        return torch.cat([sign, torch.zeros_like(sign)], 1)


def test_v2a_imagebind_scores_the_test_video_against_the_audio_generated_for_it(tmp_path):
    """av-benchmark's IB-Score setting: each test clip's video with the audio generated for it; the ceiling
    from the clips' own audio, the floor from deranged pairs."""
    from avgen.config import load_config
    from avgen.evaluation.scoring import v2a_media

    torch.jit.script(Axis(0.0)).save(str(tmp_path / "video.pt"))
    torch.jit.script(SignedAxis()).save(str(tmp_path / "audio.pt"))
    ib = [f"evaluate.imagebind.{m}={tmp_path / m}.pt" for m in ("video", "audio")]
    cfg = load_config("train", [f"paths.output_dir={tmp_path}", *ib, "evaluate.synthetic.num_derangements=20"])
    n = 6
    real = np.ones((n, 16000), np.float32)
    generated = real.copy()
    generated[:2] *= -1  # 4 of 6 generated clips point the video's way: cosine +1, the others -1
    pairs = {"video": np.random.default_rng(0).random((n, 4, 3, 8, 8), np.float32), "audio": generated}
    out = v2a_media(["imagebind"], {**pairs, "reference": real}, Frames(), Frames(), cfg)
    assert out["v2a_ib_av"] == pytest.approx((4 - 2) / 6, abs=1e-6)
    assert out["calibration"]["v2a_ib_av"]["ceiling"] == pytest.approx(1.0, abs=1e-6)  # the clips' own audio
    lo, hi = out["intervals"]["v2a_ib_av"]
    assert lo <= out["v2a_ib_av"] <= hi and out["protocol"]["v2a_ib_av"]["video"].startswith("the test clips'")


class Frames:
    """Stand-in decoders: the arrays are already frames (T, 3, H, W) and waveforms."""

    fps, sample_rate = 8.0, 16000

    def __call__(self, x):
        return np.asarray(x)

    def batch(self, xs, batch_size=64):
        return [np.asarray(x) for x in xs]


class TextAxis(nn.Module):
    def __init__(self, angle: float):
        super().__init__()
        self.register_buffer("direction", torch.tensor([np.cos(angle), np.sin(angle)], dtype=torch.float32))

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.direction.expand(len(texts), 2)


@pytest.mark.slow
def test_eval_reports_every_configured_metric(synthetic_store, tmp_path, tiny_clap):
    """`avgen eval` with the weighted metrics pointed at local stand-ins: one metrics.json with all keys."""
    import json

    from avgen.cli.main import main

    i3d = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(ScriptedI3D(torch.jit.trace(tiny_i3d(), torch.zeros(1, 3, 4, 32, 32)))).save(str(i3d))
    for m, angle in (("video", 0.0), ("audio", 1.0)):
        torch.jit.script(Axis(angle)).save(str(tmp_path / f"ib_{m}.pt"))
    common = [
        "experiment=cmmd_synthetic",
        f"data.store={synthetic_store}",
        f"output_dir={tmp_path / 'run'}",
        "model.base_channels=8",
        "model.head_dim=8",
        "data.batch_size=4",
        "sampler.steps=2",
        "evaluate.num_samples=6",
        "evaluate.num_videos=1",
        "evaluate.batch_size=6",
        "evaluate.num_video_to_audio=0",
    ]
    assert (
        main(
            [
                "train",
                *common,
                "trainer.max_steps=1",
                "trainer.limit_val_batches=0",
                "trainer.enable_progress_bar=false",
            ]
        )
        == 0
    )
    from avgen.models.panns import Cnn14
    from avgen.models.passt import PaSST
    from avgen.models.vggish import VGGish

    torch.save({"model": Cnn14(16000).state_dict()}, tmp_path / "cnn14.pth")  # random stand-ins, public layouts
    torch.save(VGGish().state_dict(), tmp_path / "vggish.pth")
    torch.save(PaSST(embed_dim=64, depth=1).state_dict(), tmp_path / "passt.pt")  # the layout at reduced width
    metrics_list = "evaluate.metrics=[synthetic,av_align,fvd,fad,panns,passt,vggish,imagebind,beats]"
    assert (
        main(
            [
                "eval",
                *common,
                metrics_list,
                "evaluate.num_video_to_audio=4",
                "evaluate.fvd.num_frames=4",
                "evaluate.fvd.size=32",
                f"evaluate.fvd.weights={i3d}",
                f"evaluate.fad.weights={tiny_clap}",
                "evaluate.fad.window_seconds=0.5",
                f"evaluate.panns.weights={tmp_path / 'cnn14.pth'}",
                f"evaluate.vggish.weights={tmp_path / 'vggish.pth'}",
                f"evaluate.passt.weights={tmp_path / 'passt.pt'}",
                f"evaluate.imagebind.video={tmp_path / 'ib_video.pt'}",
                f"evaluate.imagebind.audio={tmp_path / 'ib_audio.pt'}",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    for key in ("temporal_alignment", "av_align", "fvd", "kvd", "fad", "fad_per_sample", "ib_av"):
        assert np.isfinite(metrics[key]), key
    assert metrics["ib_av"] == pytest.approx(np.cos(1.0), abs=1e-5)
    assert metrics["v2a_ib_av"] == pytest.approx(np.cos(1.0), abs=1e-5)  # the test videos with their new audio
    # the reference AV-Align counts several onsets against one flow peak, so it can exceed 1 (docs/metrics.md)
    assert metrics["fvd"] > 0 and metrics["av_align"] >= 0
    assert 0 <= metrics["v2a_beat_hit_rate_100ms"] <= metrics["v2a_beat_hit_rate_500ms"] <= 1
    # every media score with its interval and provenance; the alignment ones with floors and a ceiling
    panns_vggish = ("fd_panns", "is_panns", "fd_vggish", "v2a_fd_panns", "v2a_kl_panns", "v2a_fd_vggish")
    panns_vggish += ("fd_passt", "is_passt", "v2a_fd_passt", "v2a_kl_passt", "v2a_is_passt")
    for key in ("av_align", "fvd", "kvd", "fad", "fad_per_sample", "ib_av", "v2a_beat_hit_rate_100ms", *panns_vggish):
        lo, hi = metrics["intervals"][key]
        assert lo <= hi and metrics["protocol"][key]["num_samples"] > 0, key
    for key in ("av_align", "ib_av", "v2a_beat_hit_rate_500ms"):
        assert {"floor", "floor_std", "ceiling"} <= set(metrics["calibration"][key]), key
    import hashlib

    assert metrics["protocol"]["fvd"]["extractor"] == {
        "file": i3d.name,
        "sha256": hashlib.sha256(i3d.read_bytes()).hexdigest(),
    }
    assert metrics["protocol"]["fad"]["vocoder"] and metrics["protocol"]["fvd"]["resolution"] == 32
    # a listed weighted metric without weights fails before any sampling
    assert main(["eval", *common, "evaluate.metrics=[fvd]"]) == 2


class ScriptedI3D(nn.Module):
    """The call signature of the widely used i3d_torchscript.pt around a traced stand-in."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        return self.net(x)
