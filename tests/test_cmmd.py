"""CMMD: negatives, losses, guidance and the LightningModule."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch

from avgen.data.clips import narrow_time, time_shift
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.cmmd.losses import contrastive_loss, joint_diffusion_loss
from avgen.methods.cmmd.module import CMMDModule, linear_cooldown, step_decay
from avgen.methods.cmmd.negatives import NegativeSampler, partner_permutation, segment_swap
from avgen.models.unets.dual_unet import DualUNet
from avgen.sampling.guidance import ReconstructionGuidance
from avgen.sampling.samplers import initial_noise

SPF = {"video": 0.125, "audio": 0.0625}  # the synthetic store: 8 fps video, 16 mel frames per second


def _ramp_batch(b=4, f=12, t=24, mv=4, ma=8):
    """Clips whose every frame holds its absolute time index, so displacements can be read back."""
    video = torch.arange(f + 2 * mv, dtype=torch.float32).reshape(1, -1, 1, 1, 1).expand(b, -1, 3, 2, 2).clone()
    audio = torch.arange(t + 2 * ma, dtype=torch.float32).reshape(1, 1, -1).expand(b, 5, -1).clone()
    video += 100 * torch.arange(b).reshape(-1, 1, 1, 1, 1)  # clip identity in the hundreds
    audio += 100 * torch.arange(b).reshape(-1, 1, 1)
    return video, audio


def _as_batch(video, audio, mv=4, ma=8):
    """A data-module batch around the clips: margins, time axes and frame rates as the store gives them."""
    return {
        "video": video,
        "audio": audio,
        "margin": {"video": mv, "audio": ma},
        "time_axis": {"video": 1, "audio": 2},
        "seconds_per_frame": SPF,
        "label": torch.zeros(len(video), dtype=torch.long),
    }


def test_time_shift_displaces_by_the_drawn_amount_in_both_frame_rates():
    video, audio = _ramp_batch()
    batch = _as_batch(video, audio)
    sampler = NegativeSampler(time_shift=1.0, segment_swap=0.0, full_swap=0.0, shift_frames=(2, 4))
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        neg_v, _ = sampler(batch, "video", generator=g)
        neg_a, _ = sampler(batch, "audio", generator=g)
        shift_v = neg_v[:, 0, 0, 0, 0] - video[:, 4, 0, 0, 0]  # in video frames
        shift_a = neg_a[:, 0, 0] - audio[:, 0, 8]  # in audio frames
        assert set(shift_v.abs().tolist()) <= {2.0, 3.0, 4.0}
        assert set(shift_a.abs().tolist()) <= {4.0, 6.0, 8.0}  # the same seconds at twice the rate
        # a contiguous window: every frame shifted alike, taken from real context (no wrap or padding)
        assert torch.equal(neg_v[:, :, 0, 0, 0] - neg_v[:, :1, 0, 0, 0], torch.arange(12.0).expand(4, -1))
        assert torch.equal(neg_a[:, 0] - neg_a[:, :1, 0], torch.arange(24.0).expand(4, -1))


def test_time_shift_needs_context():
    video, _ = _ramp_batch(mv=1)
    with pytest.raises(ValueError, match="margin"):
        time_shift(video, 1, 1, torch.tensor([2, 2, 2, 2]))


def test_segment_swap_split_points():
    x = torch.zeros(3, 1, 10)
    other = torch.ones(3, 1, 10)
    out = segment_swap(x, other, 2, torch.tensor([1, 5, 9]), torch.tensor([True, False, True]))
    assert out[0, 0].tolist() == [1] + [0] * 9
    assert out[1, 0].tolist() == [0] * 5 + [1] * 5
    assert out[2, 0].tolist() == [1] * 9 + [0]
    sampler = NegativeSampler(time_shift=0.0, segment_swap=1.0, full_swap=0.0, split_range=(0.25, 0.75))
    neg, kinds = sampler(_as_batch(*_ramp_batch()), "video", generator=torch.Generator().manual_seed(3))
    own = (neg[:, :, 0, 0, 0] // 100) == torch.arange(4).reshape(-1, 1)
    for row in own:  # one contiguous own part and one foreign part, split inside [3, 9]
        changes = (row[1:] != row[:-1]).nonzero()
        assert len(changes) == 1 and 3 <= int(changes[0]) + 1 <= 9
    assert (kinds == 1).all()


def test_full_swap_never_returns_the_positive():
    for b in (2, 3, 8):
        for seed in range(20):
            perm = partner_permutation(b, torch.Generator().manual_seed(seed))
            assert not (perm == torch.arange(b)).any() and sorted(perm.tolist()) == list(range(b))
    video, audio = _ramp_batch()
    sampler = NegativeSampler(time_shift=0.0, segment_swap=0.0, full_swap=1.0)
    neg, _ = sampler(_as_batch(video, audio), "audio", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(neg, narrow_time(audio, 2, 8))
    assert ((neg[:, 0, 0] // 100) != torch.arange(4)).all()


class FrozenNet(torch.nn.Module):
    """v_hat = 0 for every input: the loss equals the mean squared target."""

    def forward(self, x, t):
        return {m: torch.zeros_like(v) for m, v in x.items()}


def test_losses_sign_and_magnitude_on_a_frozen_net():
    s = NoiseSchedule()
    x0 = {"audio": torch.zeros(2, 4, 8), "video": torch.zeros(2, 3, 3, 2, 2)}
    noise = {"audio": torch.ones(2, 4, 8), "video": 2 * torch.ones(2, 3, 3, 2, 2)}
    t = torch.tensor([0, 999])
    loss = joint_diffusion_loss(FrozenNet(), s, x0, t, noise, "per_modality")
    abar = s.alphas_cumprod[t]
    # v = sqrt(abar) eps when x0 = 0: per-element means abar * 1 + abar * 4
    torch.testing.assert_close(loss, abar * 1 + abar * 4)
    pos, na, nv = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 5.0]), torch.tensor([7.0, 11.0])
    torch.testing.assert_close(contrastive_loss(pos, na, nv, eta=0.1), pos - 0.1 * (na + nv))
    assert (contrastive_loss(pos, na, nv, eta=0.1) < pos).all()  # negatives lower the loss: pushed away
    torch.testing.assert_close(contrastive_loss(pos, na, nv, 0.1, max_negative=4.0), pos - 0.1 * (na.clamp(max=4) + 4))


def test_step_decay_schedule():
    assert step_decay(0, 100, 0.8, 0.2) == 1.0
    assert step_decay(250, 100, 0.8, 0.2) == pytest.approx(0.64)
    assert step_decay(10_000, 100, 0.8, 0.2) == 0.2


def test_linear_cooldown_ends_the_run_at_zero():
    assert [linear_cooldown(s, 10, 4) for s in (0, 6, 7, 8, 9, 10)] == [1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert linear_cooldown(9, 10, 0) == 1.0  # off
    assert linear_cooldown(5, -1, 4) == 1.0  # no max_steps: nothing to end


def _module(coupling="easy_fusion", eta=0.1):
    net = DualUNet(
        video_channels=3,
        audio_channels=5,
        base_channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(1,),
        head_dim=16,
        coupling=coupling,
    )
    return CMMDModule(net, NoiseSchedule(), partial(torch.optim.Adam, lr=1e-3), NegativeSampler(), eta=eta)


def _batch():
    video, audio = _ramp_batch()
    return _as_batch(video / 20 - 1, audio / 40 - 1)


def test_guidance_scale_zero_equals_replacement():
    torch.manual_seed(0)
    module = _module().eval()
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    v0 = torch.rand(2, 6, 3, 4, 4) * 2 - 1
    g = torch.Generator().manual_seed(5)
    guided = ReconstructionGuidance(module.denoiser, {"video": v0}, scale=0.0, generator=g)
    x = initial_noise({"audio": (2, 5, 12), "video": (2, 6, 3, 4, 4)}, torch.Generator().manual_seed(1))
    t = torch.tensor([700, 700])
    out = guided(x, t)
    abar = module.schedule.abar(t, 5)
    replaced = {"audio": x["audio"], "video": abar.sqrt() * v0 + (1 - abar).sqrt() * guided.eps_known}
    torch.testing.assert_close(out["audio"], module.denoiser(replaced, t)["audio"])
    strong = ReconstructionGuidance(
        module.denoiser, {"video": v0}, scale=5.0, generator=torch.Generator().manual_seed(5)
    )
    assert not torch.allclose(strong(x, t)["audio"], out["audio"])  # the gradient term acts for lambda > 0


def test_v2a_keeps_the_conditioning_video_fixed():
    torch.manual_seed(0)
    module = _module().eval()
    v0 = torch.rand(2, 6, 3, 4, 4) * 2 - 1
    g = torch.Generator().manual_seed(0)
    out = module.generate(
        {"audio": (2, 5, 12), "video": (2, 6, 3, 4, 4)}, steps=5, generator=g, known={"video": v0}, guidance_scale=1.0
    )
    torch.testing.assert_close(out["video"], v0, atol=1e-4, rtol=0)
    assert out["audio"].shape == (2, 5, 12) and torch.isfinite(out["audio"]).all()


@pytest.mark.parametrize("coupling", ["easy_fusion", "rs_mma", "none"])
def test_training_step_learns_on_a_fixed_batch(coupling):
    torch.manual_seed(0)
    module = _module(coupling)
    opt = torch.optim.Adam(module.parameters(), lr=2e-3)
    batch = _batch()
    module.log_dict = lambda *a, **k: None  # outside a Trainer
    first = None
    for step in range(30):
        torch.manual_seed(step % 3)
        loss = module.training_step(batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert torch.isfinite(loss) and loss.item() < first


def test_save_load_round_trip(tmp_path):
    module = _module()
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save({"state_dict": module.state_dict()}, tmp_path / "m.ckpt")
    other = _module()
    other.load_network(str(tmp_path / "m.ckpt"))
    module.eval(), other.eval()
    x = initial_noise({"audio": (2, 5, 12), "video": (2, 6, 3, 4, 4)}, torch.Generator().manual_seed(1))
    t = torch.tensor([10, 600])
    for m, v in module.denoiser(x, t).items():
        torch.testing.assert_close(other.denoiser(x, t)[m], v)
    bad = copy.deepcopy(module.state_dict())
    bad["net.time_embed.0.weight"] = torch.zeros(3, 3)
    torch.save({"state_dict": bad}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match=r"shape \(checkpoint vs model\): time_embed.0.weight \(3, 3\)"):
        _module().load_network(str(tmp_path / "bad.ckpt"))


def test_shared_noise_lowers_the_variance_of_the_contrastive_difference():
    """On a fixed batch, per-example L - L_neg over noise draws varies far less when the negatives share
    their positive's noise than with independent noise (what makes the contrastive signal visible at small
    eta); Algorithm 1, sharing the unchanged modality's, lies between."""
    from avgen.methods.cmmd.module import negative_pair_noise

    torch.manual_seed(0)
    net = DualUNet(
        video_channels=3, audio_channels=5, base_channels=8, channel_mult=(1, 2), head_dim=8, coupling="easy_fusion"
    ).eval()
    for p in net.parameters():  # a network whose outputs depend on its inputs (zero-init heads do not)
        torch.nn.init.normal_(p, std=0.05)
    schedule = NoiseSchedule()
    x0 = {"audio": torch.randn(4, 5, 16), "video": torch.randn(4, 8, 3, 8, 8)}
    neg = {"audio": x0["audio"].roll(1, 0), "video": x0["video"].roll(1, 0)}
    sub = torch.arange(4)
    pairs = {
        "audio": torch.cat([x0["audio"], neg["audio"], x0["audio"]]),
        "video": torch.cat([x0["video"], x0["video"], neg["video"]]),
    }
    t = torch.full((4,), 400)
    variances = {}
    with torch.no_grad():
        for mode in ("algorithm1", "shared_both", "independent"):
            diffs = []
            for _ in range(24):
                loss = joint_diffusion_loss(net, schedule, pairs, t.repeat(3), negative_pair_noise(x0, sub, mode))
                pos, neg_a, neg_v = loss.split([4, 4, 4])
                diffs.append(pos - (neg_a + neg_v) / 2)
            variances[mode] = torch.stack(diffs).var(dim=0).mean().item()
    print(variances)
    assert variances["shared_both"] < 0.5 * variances["independent"], variances
    assert variances["algorithm1"] < variances["independent"], variances


@pytest.mark.slow
def test_a_cooldown_ends_the_run_at_learning_rate_zero(synthetic_store, tmp_path):
    """Through `avgen train`: a smoke run of 4 steps with the last 2 cooled ends at lr 0 (the schedule reads the
    Trainer's max_steps), from the experiment's rate."""
    from avgen.cli.main import main
    from avgen.suite import smoke_overrides
    from tests.test_method_contract import workspace

    overrides = [
        *workspace(tmp_path, synthetic_store),
        *smoke_overrides("cmmd_synthetic"),
        "method.lr_cooldown_steps=2",
    ]
    assert main(["train", "experiment=cmmd_synthetic", *overrides]) == 0  # smoke: no evaluation
    ckpt = torch.load(tmp_path / "outputs" / "cmmd_synthetic" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["lr_schedulers"][0]["_last_lr"] == [0.0]
    assert ckpt["optimizer_states"][0]["param_groups"][0]["initial_lr"] == pytest.approx(5e-4)
