"""Flow matching and the dual-stream transformer: the path and its velocity in closed form, flow solvers
that recover known distributions, temporal rotary phases shared across frame rates, no information between
uncoupled streams, conditional generation, FLOP counting, compile, and the command line."""

from __future__ import annotations

import json
import math
from functools import partial

import pytest
import torch
from torch import nn

from avgen.diffusion.denoiser import NetworkDenoiser
from avgen.diffusion.flow import FlowSchedule
from avgen.methods.flow_matching.losses import flow_matching_loss
from avgen.methods.flow_matching.module import FlowMatchingModule
from avgen.models.transformers.dual_dit import DualStreamDiT
from avgen.models.transformers.rotary import apply_rotary, rotary_angles
from avgen.sampling.samplers import sample
from avgen.utils.flops import counter

SPF = {"video": 0.125, "audio": 0.0625}


def _net(coupling="joint", **kw):
    args = dict(
        video_channels=3,
        audio_channels=5,
        video_frame_seconds=SPF["video"],
        audio_frame_seconds=SPF["audio"],
        width=32,
        depth=2,
        heads=2,
        coupling=coupling,
        video_patch_size=2,
    )
    return DualStreamDiT(**{**args, **kw})


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Zero-initialised gates make a fresh DiT output 0 whatever its input: give every weight a value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return net


def _inputs(b=2, frames=4, t=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(b, frames, 3, 4, 4, generator=g), "audio": torch.randn(b, 5, t, generator=g)}


# ------------------------------------------------------------------------------------- path and loss


def test_flow_path_endpoints_and_velocity_in_closed_form():
    s = FlowSchedule(num_train_timesteps=1000)
    x0, eps = torch.randn(3, 4), torch.randn(3, 4)

    def path(t):
        alpha, sigma = s.coefficients(torch.full((3,), float(t)), 2)
        return alpha * x0 + sigma * eps

    torch.testing.assert_close(path(0), x0)  # sigma 0: the data
    torch.testing.assert_close(path(1000), eps)  # sigma 1: the noise
    # a straight path: the finite difference over sigma is the velocity eps - x0 everywhere
    for t in (10.0, 400.0, 990.0):
        torch.testing.assert_close((path(t + 5) - path(t)) / 0.005, eps - x0, rtol=1e-3, atol=1e-3)
    # the velocity an x0 prediction implies, fed to diffusers' flow solvers, inverts the denoiser's conversion
    x_t, t = path(300), torch.full((3,), 300.0)
    torch.testing.assert_close(s.scheduler_input(x0, x_t, t), eps - x0, rtol=1e-4, atol=1e-4)


class ZeroNet(nn.Module):
    def forward(self, x, t):
        return {m: torch.zeros_like(v) for m, v in x.items()}


def test_flow_matching_loss_is_the_velocity_error_per_sample():
    s = FlowSchedule()
    x0 = {"audio": torch.zeros(2, 4, 8), "video": torch.ones(2, 3, 3, 2, 2)}
    noise = {"audio": 2 * torch.ones(2, 4, 8), "video": torch.zeros(2, 3, 3, 2, 2)}
    loss = flow_matching_loss(ZeroNet(), s, x0, torch.tensor([100.0, 900.0]), noise, "per_modality")
    # u = eps - x0: audio 2 (squared 4), video -1 (squared 1), each averaged over its elements, then summed
    torch.testing.assert_close(loss, torch.tensor([5.0, 5.0]))
    joint = flow_matching_loss(ZeroNet(), s, x0, torch.tensor([100.0, 900.0]), noise)
    # one squared norm over both: (32 audio elements x 4 + 36 video elements x 1) / 68
    torch.testing.assert_close(joint, torch.full((2,), (32 * 4 + 36 * 1) / 68))


def test_timestep_distributions():
    g = torch.Generator().manual_seed(0)
    uniform = FlowSchedule(timestep_distribution="uniform").sample_timesteps(20000, torch.device("cpu"), g)
    assert 0 <= uniform.min() and uniform.max() < 1000 and abs(float(uniform.mean()) - 500) < 10
    logit = FlowSchedule(timestep_distribution="logit_normal").sample_timesteps(20000, torch.device("cpu"), g)
    middle = ((logit > 250) & (logit < 750)).float().mean()
    assert abs(float(logit.median()) - 500) < 15 and middle > 0.6  # uniform puts 0.5 there
    with pytest.raises(ValueError, match="timestep_distribution"):
        FlowSchedule(timestep_distribution="cosine")
    with pytest.raises(ValueError, match="flow-matching"):
        FlowSchedule().sampler("ddim", 10)


# ------------------------------------------------------------------------------ solvers, known velocity


class PointMassVelocity(nn.Module):
    """The exact velocity towards a point mass c: u(x, sigma) = (x - c) / sigma."""

    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x, t):
        sigma = (t.float() / 1000).reshape(-1, 1, 1)
        return {"audio": (x["audio"] - self.c) / sigma}


class MixtureVelocity(nn.Module):
    """The exact velocity E[eps - x0 | x_sigma = x] for 1-D data sum_k w_k N(mu_k, s_k^2) on the straight path."""

    def __init__(self, weights, means, stds):
        super().__init__()
        self.w, self.mu, self.s = (torch.tensor(v, dtype=torch.float64) for v in (weights, means, stds))

    def forward(self, x, t):
        sigma = (t.double() / 1000).reshape(-1, 1)
        xx = x["audio"].double().reshape(-1, 1)  # (B, 1) against (K,)
        mean, var = (1 - sigma) * self.mu, (1 - sigma) ** 2 * self.s**2 + sigma**2
        log_r = torch.log(self.w) - 0.5 * torch.log(var) - 0.5 * (xx - mean) ** 2 / var
        r = torch.softmax(log_r, dim=1)  # responsibilities
        x0 = self.mu + (1 - sigma) * self.s**2 / var * (xx - mean)  # E[x0 | x, k]
        eps = sigma / var * (xx - mean)  # E[eps | x, k]
        return {"audio": (r * (eps - x0)).sum(1).reshape(x["audio"].shape).to(x["audio"].dtype)}


@pytest.mark.parametrize("sampler,steps", [("flow_euler", 8), ("flow_heun", 4)])
def test_flow_solvers_recover_a_point_mass(sampler, steps):
    denoiser = NetworkDenoiser(PointMassVelocity(1.5), {"audio": FlowSchedule()}, prediction="velocity")
    out = sample(denoiser, {"audio": torch.randn(64, 1, 1, generator=torch.Generator().manual_seed(0))}, sampler, steps)
    torch.testing.assert_close(out["audio"], torch.full((64, 1, 1), 1.5), rtol=0, atol=1e-3)


def test_flow_euler_recovers_a_gaussian_mixture():
    w, mu, s = (0.3, 0.7), (-2.0, 1.5), (0.15, 0.3)
    denoiser = NetworkDenoiser(MixtureVelocity(w, mu, s), {"audio": FlowSchedule()}, prediction="velocity")
    x = torch.randn(4000, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = sample(denoiser, {"audio": x}, "flow_euler", 100)["audio"].flatten()
    left, right = out[out < 0], out[out >= 0]
    assert abs(len(left) / len(out) - 0.3) < 0.03  # the weights (binomial sd 0.007)
    assert abs(float(left.mean()) - mu[0]) < 0.03 and abs(float(right.mean()) - mu[1]) < 0.03
    assert abs(float(left.std()) - s[0]) < 0.03 and abs(float(right.std()) - s[1]) < 0.03


# ------------------------------------------------------------------------------------------- network


def test_rotary_time_phase_is_shared_by_a_video_frame_and_its_audio_frames():
    for video_s, audio_s, (frame, audio_frame) in [(0.125, 0.0625, (3, 6)), (0.1, 0.016, (4, 25))]:
        net = _net(video_frame_seconds=video_s, audio_frame_seconds=audio_s, heads=1)  # head width 32: 16 time
        video = rotary_angles(net.positions("video", (8, 2, 2), "cpu"), net.rope_axes)
        audio = rotary_angles(net.positions("audio", (40,), "cpu"), net.rope_axes)
        time = net.rope_axes[0] // 2
        for token in range(frame * 4, frame * 4 + 4):  # every patch of that frame
            torch.testing.assert_close(video[token, :time], audio[audio_frame, :time])
        assert not torch.allclose(video[frame * 4, :time], audio[audio_frame + 1, :time])
        assert (audio[:, time:] == 0).all()  # audio has no rows or columns: those channels are not rotated


def test_rotary_attention_depends_on_relative_position_only():
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(pq, pk):
        aq = rotary_angles(torch.tensor([pq], dtype=torch.float64), (8, 4, 4))
        ak = rotary_angles(torch.tensor([pk], dtype=torch.float64), (8, 4, 4))
        return float((apply_rotary(q, aq) * apply_rotary(k, ak)).sum())

    assert score([1.0, 2, 3], [4.5, 0, 1]) == pytest.approx(score([11.0, 7, 8], [14.5, 5, 6]), rel=1e-4)
    assert score([1.0, 2, 3], [4.5, 0, 1]) != pytest.approx(score([1.0, 2, 3], [5.5, 0, 1]), rel=1e-3)


@pytest.mark.parametrize("coupling", ["joint", "cross", "none"])
def test_information_between_streams_flows_only_when_coupled(coupling):
    net = _randomised(_net(coupling))
    x = {m: v.requires_grad_(True) for m, v in _inputs().items()}
    out = net(x, torch.tensor([300.0, 700.0]))
    assert out["video"].shape == x["video"].shape and out["audio"].shape == x["audio"].shape
    grad = partial(torch.autograd.grad, retain_graph=True, allow_unused=True, materialize_grads=True)
    (audio_from_video,) = grad(out["audio"].sum(), x["video"])
    (video_from_audio,) = grad(out["video"].sum(), x["audio"])
    if coupling == "none":
        assert (audio_from_video == 0).all() and (video_from_audio == 0).all()
    else:
        assert audio_from_video.abs().sum() > 0 and video_from_audio.abs().sum() > 0


def test_tokens_round_trip_and_lengths_are_free():
    net = _randomised(_net())
    x = _inputs(frames=4, t=8)
    for m in ("video", "audio"):
        tokens, _ = net.tokens(m, x[m])
        assert torch.equal(net.untokens(m, tokens, x[m].shape), x[m])
    latent = torch.randn(2, 2, 8, 3)  # 2-D audio latents (B, C, T, M): folded to C*M = 6 channels
    net6 = _net(audio_channels=6)
    assert torch.equal(net6.untokens("audio", net6.tokens("audio", latent)[0], latent.shape), latent)
    long = net(_inputs(frames=8, t=16), torch.tensor([500.0, 500.0]))  # twice the length: rotary positions
    assert long["video"].shape[1] == 8 and long["audio"].shape[-1] == 16
    with pytest.raises(ValueError, match="multiples of video_patch_size"):
        net({"video": torch.randn(1, 4, 3, 5, 5), "audio": torch.randn(1, 5, 8)}, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="needs both modalities"):
        _net("joint", modalities=["audio"])


@pytest.mark.slow  # whole-CLI run, subprocess or compile: the slow tier
def test_compiled_network_matches_eager():
    net = _randomised(_net())
    x, t = _inputs(), torch.tensor([250.0, 750.0])
    compiled = torch.compile(net, backend="aot_eager")
    eager_out, compiled_out = net(x, t), compiled(x, t)
    for m in eager_out:
        torch.testing.assert_close(compiled_out[m], eager_out[m], rtol=1e-5, atol=1e-5)
    grads = [
        torch.autograd.grad(sum(o.sum() for o in out.values()), net.blocks[0].streams["audio"].mlp[0].weight)[0]
        for out in (net(x, t), compiled(x, t))
    ]
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)


def test_flop_counter_counts_attention_on_the_cpu():
    q = torch.randn(2, 4, 64, 32, requires_grad=True)
    with counter() as c:
        torch.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
    # forward: two (64 x 32) @ (32 x 64)-sized matmuls per head (scores, then values), 2 FLOPs per
    # multiply-add; backward: five of them (the scores recomputed; gradients of scores, values, queries, keys)
    matmul = 2 * 2 * 4 * 64 * 64 * 32
    assert c.get_total_flops() == 2 * matmul + 5 * matmul


# -------------------------------------------------------------------------------------------- method


def _module(coupling="joint"):
    return FlowMatchingModule(_randomised(_net(coupling)), FlowSchedule(), partial(torch.optim.AdamW, lr=1e-3))


def test_conditional_generation_keeps_the_known_modality_and_is_seeded():
    module = _module().eval()
    known = _inputs(b=3)["video"]
    shapes = {"video": tuple(known.shape), "audio": (3, 5, 8)}
    for scale in (0.0, 1.0):
        a = module.generate(shapes, steps=3, known={"video": known}, guidance_scale=scale, seeds=[0, 1, 2])
        b = module.generate(shapes, steps=3, known={"video": known}, guidance_scale=scale, seeds=[0, 1, 2])
        torch.testing.assert_close(a["video"], known)
        assert torch.equal(a["audio"], b["audio"]) and torch.isfinite(a["audio"]).all()
    joint = module.generate(shapes, steps=3, seeds=[0, 1, 2], sampler="flow_heun")
    assert joint["audio"].shape == (3, 5, 8) and torch.isfinite(joint["video"]).all()


def test_training_step_checks_the_frame_rates_against_the_store():
    module = _module()
    video, audio = _inputs(b=2)["video"], _inputs(b=2)["audio"]
    batch = {
        "video": video,
        "audio": audio,
        "margin": {"video": 0, "audio": 0},
        "time_axis": {"video": 1, "audio": 2},
        "seconds_per_frame": dict(SPF),
        "label": torch.zeros(2, dtype=torch.long),
    }
    assert math.isfinite(float(module.training_step(batch, 0)))
    module._rates_checked = False
    with pytest.raises(ValueError, match="video_frame_seconds=0.125 but the store's video frames last 0.1 s"):
        module.training_step({**batch, "seconds_per_frame": {"video": 0.1, "audio": 0.0625}}, 0)


# --------------------------------------------------------------------------------------- command line


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["flowdit_synthetic", "flowdit_independent_synthetic"])
def test_flowdit_trains_and_scores_through_the_command_line(synthetic_store, tmp_path, experiment):
    from avgen.cli.main import main

    out = tmp_path / "run"
    rc = main(
        [
            "train",
            f"experiment={experiment}",
            f"data.store={synthetic_store}",
            f"output_dir={out}",
            "model.width=32",
            "model.heads=2",
            "model.depth=2",
            "data.batch_size=4",
            "trainer.max_steps=2",
            "trainer.val_check_interval=1",
            "trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false",
            "callbacks.flops.every_n_steps=1",
            "evaluate.num_samples=4",
            "evaluate.num_videos=1",
            "evaluate.batch_size=4",
            "evaluate.num_video_to_audio=4",
            "sampler.steps=2",
        ]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["temporal_f1"] <= 1 and 0 <= metrics["v2a_temporal_f1"] <= 1
    assert metrics["steps"] == 2 and metrics["parameters"] > 0 and metrics["gflops_per_step"] > 0
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["avgen_config"]["method"]["_target_"].endswith("FlowMatchingModule")


def test_flop_counter_equals_torchs_and_survives_a_double_backward():
    from torch.utils.flop_counter import FlopCounterMode

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with FlopCounterMode(display=False) as reference:
        net(x).sum().backward()
    with counter() as ours:
        net(x).sum().backward()
    assert ours.get_total_flops() == reference.get_total_flops() > 0
    with counter() as double:  # MMDisCo's L_dsm differentiates an input gradient (torch's counter refuses)
        (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
        grad.pow(2).sum().backward()
    assert double.get_total_flops() > ours.get_total_flops()


def test_token_count_is_the_tokens_the_streams_see():
    """perf/tokens_per_s counts what `tokens` makes: p x p patches per frame and k mel frames per token."""
    net = _net(video_patch_size=2, audio_patch_frames=2)
    video, audio = torch.zeros(1, 6, 3, 8, 4), torch.zeros(1, 5, 12)
    expected = net.tokens("video", video)[0].shape[1] + net.tokens("audio", audio)[0].shape[1]
    assert net.token_count({"video": (6, 3, 8, 4), "audio": (5, 12)}) == expected == 6 * 4 * 2 + 6
