"""MMDisCo: losses, guidance against closed forms, frozen bases, and the toy experiment's plumbing."""

from __future__ import annotations

import json
import math

import pytest
import torch

from avgen.diffusion.conversions import eps_from_x0, x0_from_eps
from avgen.diffusion.denoiser import Denoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.mmdisco.guidance import DiscriminatorGuidance
from avgen.methods.mmdisco.losses import discriminator_loss, dsm_loss, logit_gradients
from avgen.methods.mmdisco.toy import ToyConfig, independent_bases, mixture_nll, train_discriminator
from avgen.models.toy import ToyBase
from avgen.sampling.samplers import initial_noise, sample


class LinearLogit(torch.nn.Module):
    """d(a, v) = w_a . a + w_v . v + c: a logistic discriminator whose logit gradient is (w_a, w_v)."""

    def __init__(self, w_a: float, w_v: float):
        super().__init__()
        self.w = {"audio": w_a, "video": w_v}

    def forward(self, x, t):
        return sum(self.w[m] * x[m].flatten(1).sum(1) for m in x) + 0.3


class ZeroBase(Denoiser):
    """Predicts x0 = 0: eps = x_t / sigma_t."""

    def __init__(self):
        super().__init__()
        self.schedules = torch.nn.ModuleDict({"audio": NoiseSchedule(), "video": NoiseSchedule()})

    def forward(self, x, t):
        return {m: torch.zeros_like(v) for m, v in x.items()}


def test_guidance_residual_sign_and_scale_match_the_closed_form():
    base, disc = ZeroBase(), LinearLogit(w_a=0.5, w_v=-2.0)
    x = {"audio": torch.randn(3, 2, 4), "video": torch.randn(3, 4, 1, 2, 2)}
    t = torch.tensor([100, 400, 900])
    guided = DiscriminatorGuidance(base, disc, {"audio": 1.5, "video": 0.5})(x, t)
    for m, s in (("audio", 1.5), ("video", 0.5)):
        abar = base.abar(m, t, x[m])
        sigma = (1 - abar).sqrt()
        eps_joint = eps_from_x0(x[m], torch.zeros_like(x[m]), abar) - s * sigma * disc.w[m]  # Eq. 12
        torch.testing.assert_close(guided[m], x0_from_eps(x[m], eps_joint, abar))
        # a positive logit slope moves the x0 estimate up: toward what the discriminator calls real
        assert torch.sign((guided[m] - 0).mean()) == torch.sign(torch.tensor(disc.w[m])) or s == 0


def test_scale_zero_is_the_unguided_sampler():
    base, disc = ZeroBase(), LinearLogit(1.0, 1.0)
    x = initial_noise({"audio": (2, 1, 4), "video": (2, 2, 1, 2, 2)}, torch.Generator().manual_seed(0))
    plain = sample(base, x, "ddim", 10)
    guided = sample(DiscriminatorGuidance(base, disc, {"audio": 0.0, "video": 0.0}), x, "ddim", 10)
    for m in plain:
        torch.testing.assert_close(guided[m], plain[m])


def test_dsm_loss_is_zero_when_the_gradient_is_the_true_residual():
    eps_base = {"audio": torch.randn(4, 3), "video": torch.randn(4, 2, 2)}
    grads = {"audio": torch.randn(4, 3), "video": torch.randn(4, 2, 2)}
    sigma = {m: torch.rand(4, *([1] * (v.ndim - 1))) + 0.1 for m, v in eps_base.items()}
    noise = {m: eps_base[m] - sigma[m] * grads[m] for m in eps_base}  # the true joint eps
    assert torch.allclose(dsm_loss(noise, eps_base, sigma, grads), torch.zeros(4), atol=1e-6)
    assert (dsm_loss(noise, eps_base, sigma, {m: 0 * g for m, g in grads.items()}) > 0).all()


def test_dsm_loss_is_the_squared_norm_summed_over_modalities():
    """Paper Eq. 15: ||eps^a - eps_joint_a||^2 + ||eps^v - eps_joint_v||^2, a sum over elements (`sum`) or each
    modality's mean over its elements (`mean`), summed over the modalities."""
    noise = {"audio": torch.ones(2, 3), "video": torch.full((2, 2, 5), 2.0)}
    zero = {m: torch.zeros_like(x) for m, x in noise.items()}
    sigma = {m: torch.ones(2, *([1] * (x.ndim - 1))) for m, x in noise.items()}
    torch.testing.assert_close(dsm_loss(noise, zero, sigma, zero, "sum"), torch.tensor([3.0 + 40.0, 43.0]))
    torch.testing.assert_close(dsm_loss(noise, zero, sigma, zero, "mean"), torch.tensor([1.0 + 4.0, 5.0]))
    torch.testing.assert_close(dsm_loss(noise, zero, sigma, zero, "normalized"), torch.tensor([43.0, 43.0]) / 13)
    with pytest.raises(ValueError, match="normalized, sum, mean"):
        dsm_loss(noise, zero, sigma, zero, "max")


def test_discriminator_loss_is_bce_with_logits():
    real, fake = torch.tensor([0.0, 10.0]), torch.tensor([0.0, -10.0])
    loss = discriminator_loss(real, fake)
    torch.testing.assert_close(loss[[0, 2]], torch.full((2,), 0.6931), atol=1e-4, rtol=0)
    assert loss[1] < 1e-4 and loss[3] < 1e-4


def test_logit_gradients_support_double_backprop():
    disc = torch.nn.Linear(2, 1)
    x = {"audio": torch.randn(5, 1), "video": torch.randn(5, 1)}
    wrapped = lambda x, t: disc(torch.cat([x["audio"], x["video"]], 1)).squeeze(-1) ** 2  # noqa: E731
    _, grads = logit_gradients(wrapped, x, torch.zeros(5), create_graph=True)
    sum(g.pow(2).sum() for g in grads.values()).backward()
    assert disc.weight.grad is not None and disc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", ["disc", "dsm", "both"])
def test_no_gradient_reaches_the_base(variant):
    cfg = ToyConfig(disc_steps=3, batch=16, timesteps=50)
    base = ToyBase()
    bases = independent_bases(base, cfg)
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    disc = train_discriminator(bases, real, fake, variant, cfg, torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in base.parameters())
    assert isinstance(
        disc(dict(audio=real[:4, :1], video=real[:4, 1:]), torch.zeros(4, dtype=torch.long)), torch.Tensor
    )


def test_mixture_nll_known_values():
    means = torch.tensor([[0.0, 0.0]])
    # at the mean of a 2-D isotropic Gaussian: -log p = log(2 pi s^2)
    assert mixture_nll(torch.zeros(1, 2), means, 0.4) == pytest.approx(math.log(2 * math.pi * 0.16), abs=1e-6)
    # the widened-target NLL of true samples is the paper's GT value (1.67)
    peaks = torch.tensor([[2.25, 2.25], [-2.25, 2.25], [2.25, -2.25], [-2.25, -2.25], [0.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    x = peaks[torch.randint(5, (20000,), generator=g)] + 0.1 * torch.randn(20000, 2, generator=g)
    assert mixture_nll(x, peaks, 0.4) == pytest.approx(1.676, abs=0.02)


def test_toy_command_writes_the_results(tmp_path):
    from avgen.cli.main import main

    rc = main(
        [
            "toy",
            f"out={tmp_path}",
            "toy.base_steps=30",
            "toy.disc_steps=5",
            "toy.num_eval=64",
            "toy.num_fake=64",
            "toy.sampler_steps=10",
            "toy.batch=64",
        ]
    )
    assert rc == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"ind", "ood"}
    assert all(set(r) == {"gt", "no_joint", "disc", "dsm", "both"} for r in results.values())
    import numpy as np

    assert np.load(tmp_path / "samples_ood_both.npy").shape == (64, 2)
    assert (tmp_path / "figure.png").stat().st_size > 0


def _disc_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(2, 6, 3, 8, 8, generator=g), "audio": torch.randn(2, 16, 12, generator=g)}


@pytest.mark.parametrize("head,separable", [("mlp", False), ("transformer", False), ("linear", True)])
def test_video_guidance_depends_on_audio_only_for_non_separable_heads(head, separable):
    from avgen.models.discriminators.av_discriminator import AVDiscriminator

    torch.manual_seed(0)
    disc = AVDiscriminator(
        video_channels=3,
        audio_channels=16,
        base_channels=16,
        channel_mult=(1, 2),
        blocks_per_level=1,
        head=head,
        head_dim=32,
    )
    with torch.no_grad():  # open the zero-initialised convolutions
        for p in disc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, t = _disc_inputs(), torch.tensor([10, 300])
    assert disc(x, t).shape == (2,)
    _, g1 = logit_gradients(disc, x, t, create_graph=False)
    _, g2 = logit_gradients(
        disc, {"video": x["video"], "audio": x["audio"] + torch.randn_like(x["audio"])}, t, create_graph=False
    )
    changed = (g1["video"] - g2["video"]).abs().max().item() > 1e-6
    assert changed != separable


@pytest.mark.parametrize("head", ["mlp", "transformer", "linear"])
def test_dsm_double_backprop_reaches_every_head(head):
    """L_dsm differentiates the input gradient w.r.t. the parameters: every head must support it (on CPU the
    fused attention kernels have no double backward)."""
    from avgen.models.discriminators.av_discriminator import AVDiscriminator

    torch.manual_seed(0)
    disc = AVDiscriminator(
        video_channels=3,
        audio_channels=16,
        base_channels=16,
        channel_mult=(1, 2),
        blocks_per_level=1,
        head=head,
        head_dim=32,
    )
    x, t = _disc_inputs(), torch.tensor([10, 300])
    _, grads = logit_gradients(disc, x, t, create_graph=True)
    sum(g.pow(2).sum() for g in grads.values()).backward()
    head_params = [p for n, p in disc.named_parameters() if n.startswith(("fuse", "out", "encoder", "proj"))]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head_params)


def test_denoising_errors_are_l_dsm_ends():
    """Validation signal: the bases' and the guided eps error on real pairs. A base that is exact on these
    pairs (x0 = 0 data, x0 = 0 predictions) has zero error; a residual -sigma*w adds (sigma w)^2 per element."""
    from avgen.methods.mmdisco.losses import denoising_errors

    real = {"audio": torch.zeros(3, 4), "video": torch.zeros(3, 2, 5)}
    t = torch.tensor([10, 500, 900])
    disc, g = LinearLogit(0.1, 0.2), torch.Generator().manual_seed(0)
    base, guided = denoising_errors(disc, ZeroBase(), real, t, g, reduction="mean")
    sigma2 = 1 - NoiseSchedule().abar(t, 1)
    torch.testing.assert_close(base, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(guided, sigma2 * (0.1**2 + 0.2**2), rtol=1e-4, atol=1e-6)  # per element, summed
    _, normalized = denoising_errors(disc, ZeroBase(), real, t, g)  # over all 4 + 10 elements
    torch.testing.assert_close(normalized, sigma2 * (4 * 0.1**2 + 10 * 0.2**2) / 14, rtol=1e-4, atol=1e-6)


def test_waveform_discriminator_uses_a_strided_stem():
    """MMDisCo in-domain audio is a 16 kHz waveform (1, 25600): a strided stem brings it to a feature rate."""
    from avgen.models.discriminators.av_discriminator import AVDiscriminator

    disc = AVDiscriminator(
        video_channels=3,
        audio_channels=1,
        base_channels=8,
        channel_mult=(1,),
        blocks_per_level=1,
        head_dim=16,
        audio_stem_stride=160,
    )
    x = {"video": torch.randn(2, 16, 3, 16, 16), "audio": torch.randn(2, 1, 25600)}
    emb = disc.time_embed(torch.zeros(2, 8))
    assert disc.audio(x["audio"], emb).shape == (2, 160, 8)  # 25600 / 160 feature steps
    _, grads = logit_gradients(disc, x, torch.tensor([5, 50]), create_graph=False)
    assert grads["audio"].shape == (2, 1, 25600)


def test_video_coordinates_let_pooled_features_see_where_the_ball_is():
    """Pooling over space makes a frame's features blind to position (a ball at a wall looks like a ball
    anywhere): without coordinate channels, moving a ball (away from the borders) leaves the pooled video
    features unchanged; with `video_coords` they change."""
    from avgen.models.discriminators.av_discriminator import Stream, coordinate_channels

    frame = torch.full((1, 3, 1, 16, 16), -1.0)
    left, right = frame.clone(), frame.clone()
    left[..., 6:9, 4:7] = 1.0  # the same 3x3 ball, 5 pixels apart, far from the borders
    right[..., 6:9, 9:12] = 1.0
    emb = torch.zeros(1, 8)
    for coords in (False, True):
        torch.manual_seed(0)
        stream = Stream("video", 3, 8, (1,), 1, 8, coords=coords)
        for p in stream.parameters():
            torch.nn.init.normal_(p, std=0.3)
        gap = (stream(left, emb) - stream(right, emb)).abs().max().item()
        assert (gap > 1e-4) if coords else (gap < 1e-6), (coords, gap)  # 4.7e-4 vs 2.4e-7 (float32 rounding)
    grid = coordinate_channels(frame)
    assert grid.shape == (1, 2, 1, 16, 16) and grid[0, 0, 0, 0, -1] == 1 and grid[0, 1, 0, -1, 0] == 1  # x, y


def test_no_guidance_below_min_alpha():
    """Near pure noise (sqrt(abar) < min_alpha) the guided denoiser is the base; above it, guidance acts."""
    base, disc = ZeroBase(), LinearLogit(0.5, -0.25)
    x = {"audio": torch.randn(2, 3), "video": torch.randn(2, 2, 2)}
    t = torch.tensor([999, 200])  # cosine schedule: sqrt(abar) 0.0016 and 0.95
    guided = DiscriminatorGuidance(base, disc, {"audio": 1.0, "video": 1.0}, min_alpha=0.05)(x, t)
    plain = base(x, t)
    for m in x:
        torch.testing.assert_close(guided[m][0], plain[m][0])
        assert not torch.allclose(guided[m][1], plain[m][1])


class _Schedules:
    """Just what the diagnostics need of the bases: each modality's abar."""

    def __init__(self):
        self.schedule = NoiseSchedule()

    def abar(self, m, t, x):
        return self.schedule.abar(t, x.ndim)


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_alignment_diagnostics(head):
    """Logits of aligned, deranged and shifted real pairs per timestep, and how much the video guidance moves
    when the audio is swapped: exactly 0 for the separable (linear) head, not 0 for a non-separable one."""
    from avgen.methods.mmdisco.diagnostics import alignment_diagnostics
    from avgen.models.discriminators.av_discriminator import AVDiscriminator

    torch.manual_seed(0)
    disc = AVDiscriminator(
        video_channels=3, audio_channels=16, base_channels=16, channel_mult=(1, 2), blocks_per_level=1, head=head
    ).eval()
    for p in disc.parameters():
        torch.nn.init.normal_(p, std=0.1)
    real = {"video": torch.randn(4, 6, 3, 8, 8), "audio": torch.randn(4, 16, 12)}
    out = alignment_diagnostics(disc, _Schedules(), real, timesteps=(100, 800))
    assert set(out) == {"t100", "t800"}
    assert set(out["t100"]) == {"logit_aligned", "logit_deranged", "logit_shifted", "grad_v_change"}
    change = out["t800"]["grad_v_change"]
    assert change < 1e-5 if head == "linear" else change > 1e-3


def test_deranged_fakes_are_real_clips_with_another_clips_audio():
    """data.fakes=deranged: the same marginals as real pairs, no pair aligned (every audio moved to another clip)."""
    from avgen.data.real_fake import AlignmentFakes

    video = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1, 1, 1).expand(4, 8, 3, 2, 2).clone()
    audio = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1).expand(4, 5, 12).clone()
    batch = {
        "video": video,
        "audio": audio,
        "margin": {"video": 1, "audio": 2},
        "time_axis": {"video": 1, "audio": 2},
        "label": torch.arange(4),
    }
    (fake,) = list(AlignmentFakes([batch], "deranged"))
    assert fake["video"].shape == (4, 6, 3, 2, 2) and fake["audio"].shape == (4, 5, 8)  # centred
    ids_v, ids_a = fake["video"][:, 0, 0, 0, 0], fake["audio"][:, 0, 0]
    assert not torch.any(ids_v == ids_a) and sorted(ids_a.tolist()) == [0, 1, 2, 3]


def test_shifted_fakes_are_real_clips_with_their_own_audio_displaced():
    """data.fakes=shifted: each clip's own audio, displaced by 2-4 video frames either way inside its context
    (converted to audio frames), drawn from the clip ids so that a resumed run draws the same shifts."""
    from avgen.data.real_fake import AlignmentFakes

    b, margin_a = 64, 8  # audio: 2 frames per video frame; 4 video frames of context
    video = torch.arange(b, dtype=torch.float32).reshape(b, 1, 1, 1, 1).expand(b, 20, 3, 2, 2).clone()
    frames = torch.arange(40, dtype=torch.float32)
    audio = (1000 * torch.arange(b, dtype=torch.float32)[:, None, None] + frames).expand(b, 5, 40).clone()
    batch = {
        "video": video,
        "audio": audio,
        "margin": {"video": 4, "audio": margin_a},
        "time_axis": {"video": 1, "audio": 2},
        "seconds_per_frame": {"video": 0.125, "audio": 0.0625},
        "id": [f"clip{i}" for i in range(b)],
        "label": torch.arange(b),
    }
    fakes = AlignmentFakes([batch], "shifted", (2, 4), seed=0)
    (fake,) = list(fakes)
    assert fake["video"].shape == (b, 12, 3, 2, 2) and fake["audio"].shape == (b, 5, 24)
    assert torch.equal(fake["video"][:, 0, 0, 0, 0], torch.arange(b, dtype=torch.float32))
    own = fake["audio"][:, 0, 0] // 1000
    shift = fake["audio"][:, 0, 0] % 1000 - margin_a  # audio frames moved
    assert torch.equal(own, torch.arange(b, dtype=torch.float32))  # its own audio, nobody else's
    assert set(shift.abs().tolist()) == {4.0, 6.0, 8.0} and (shift > 0).any() and (shift < 0).any()
    (again,) = list(AlignmentFakes([batch], "shifted", (2, 4), seed=0))
    assert torch.equal(again["audio"], fake["audio"])  # the same batch draws the same shifts


def test_mixed_fakes_replace_a_fraction_of_each_bases_batch_by_shifted_pairs():
    """data.fakes=mixed: the bases' batch keeps its first rows, its last round(fraction x B) are shifted real
    pairs, taken in order and started again when that loader runs out; fraction 0 is the bases' batch."""
    from avgen.data.real_fake import MixedFakes

    def batch(value, b):
        return {
            "video": torch.full((b, 6, 3, 2, 2), float(value)),
            "audio": torch.full((b, 5, 8), float(value)),
            "caption": [f"{value}"] * b,
        }

    bases = [batch(0, 8), batch(1, 8), batch(2, 8)]
    shifted = [batch(-1, 8), batch(-2, 8)]
    out = list(MixedFakes(bases, shifted, fraction=0.25))
    assert len(out) == len(MixedFakes(bases, shifted)) == 3
    for i, (fake, other) in enumerate(zip(out, (-1, -2, -1))):  # the shifted loader starts again
        for m in ("video", "audio"):
            assert fake[m].shape == bases[i][m].shape
            assert torch.equal(fake[m][:6], bases[i][m][:6]) and (fake[m][6:] == other).all()
        assert fake["caption"] == [f"{i}"] * 6 + [f"{other}"] * 2
    assert list(MixedFakes(bases, shifted, fraction=0.0))[1] is bases[1]


def test_variant_names_what_sets_a_run_apart():
    """The comparison's label says which fakes, L_dsm form and weight, L_disc form and video coordinates a run
    trained with; a run from before `dsm_reduction` (no key) summed its L_dsm, one before `disc_reduction` averaged."""
    from omegaconf import OmegaConf

    from avgen.methods.mmdisco.module import MMDisCoModule

    def label(method, data=None, coords=True):
        cfg = OmegaConf.create({"method": method, "data": data or {}, "model": {"head": "mlp", "video_coords": coords}})
        return MMDisCoModule.variant(cfg)

    assert label({"dsm_reduction": "normalized", "disc_reduction": "sum"}) == "head=mlp"
    assert label({"dsm_reduction": "mean"}) == "head=mlp, L_dsm per-modality mean, L_disc mean"
    assert label({}, {"fakes": "shifted"}) == (
        "head=mlp, shifted-fakes variant (p_real/p_shifted), L_dsm summed, L_disc mean"
    )
    assert label({"dsm_reduction": "normalized", "disc_reduction": "sum"}, {"fakes": "mixed"}) == (
        "head=mlp, mixed-fakes variant (bases' and shifted)"
    )
    no_dsm = label({"use_dsm": False, "disc_reduction": "sum"}, coords=False)
    assert no_dsm == "head=mlp, no L_dsm, no video coordinates"
    weighted = label({"dsm_reduction": "normalized", "disc_reduction": "sum", "dsm_weight": 30.0})
    assert weighted == "head=mlp, lambda=30"
    assert label({"use_dsm": False, "disc_reduction": "sum", "dsm_weight": 30.0}) == "head=mlp, no L_dsm"


def test_mmdisco_bench_runs_both_sides_of_each_ratio():
    from avgen.config import load_config
    from avgen.methods.mmdisco.bench import bench_mmdisco

    cfg = load_config(
        "bench",
        [
            "unet_model=dual_unet_tiny",
            "discriminator_model=discriminator_tiny",
            "mmdisco_repeats=1",
            "mmdisco_sampling_steps=2",
        ],
    )
    results = bench_mmdisco(cfg)
    assert results["mmdisco_step_over_base_finetune_step"] > 0 and results["guided_sampling_overhead"] > -1
