"""The papers' objectives as written: CMMD Algorithm 1's noise, Eq. 2's weighting across modalities, a
fine-tune that continues its parent, MMDisCo's L_dsm re-weighting and Eq. 9 (docs/methods.md)."""

from __future__ import annotations

import warnings
from functools import partial

import pytest
import torch

from avgen.diffusion.conversions import noisy, v_from_x0_eps
from avgen.diffusion.schedule import NoiseSchedule
from avgen.diffusion.weighting import modality_squared_error
from avgen.methods.cmmd.losses import joint_diffusion_loss
from avgen.methods.cmmd.module import CMMDModule, negative_pair_noise, noise_mode, step_decay
from avgen.methods.continuation import Continuation
from avgen.methods.mmdisco.losses import discriminator_loss, dsm_loss, reduce_discriminator_loss


class Recorder(torch.nn.Module):
    """Returns zeros (the loss is then the squared target) and keeps every input it was given."""

    def __init__(self):
        super().__init__()
        self.inputs: list[dict[str, torch.Tensor]] = []

    def forward(self, x, t):
        self.inputs.append({m: v.clone() for m, v in x.items()})
        return {m: torch.zeros_like(v) for m, v in x.items()}


def _pairs(b=4, k=2):
    torch.manual_seed(0)
    x0 = {"audio": torch.randn(b, 3, 8), "video": torch.randn(b, 6, 3, 4, 4)}
    neg = {"audio": torch.randn(b, 3, 8), "video": torch.randn(b, 6, 3, 4, 4)}
    sub = torch.tensor([2, 0])[:k]
    pairs = {
        "audio": torch.cat([x0["audio"], neg["audio"][sub], x0["audio"][sub]]),
        "video": torch.cat([x0["video"], x0["video"][sub], neg["video"][sub]]),
    }
    return x0, neg, sub, pairs


def test_algorithm1_noises_each_negative_as_algorithm_1_does():
    """(a', v): a' noised with a fresh eps_a_neg, v as the positive's noisy v_n; (a, v'): a_n and v' with a fresh
    eps_v_neg; same t; each pair regresses its own targets (for the unchanged modality the positive's)."""
    x0, neg, sub, pairs = _pairs()
    b, k = 4, 2
    schedule, net = NoiseSchedule(), Recorder()
    t = torch.tensor([100, 400, 700, 900])
    t_all = torch.cat([t, t[sub], t[sub]])
    noise = negative_pair_noise(x0, sub, "algorithm1")
    loss = joint_diffusion_loss(net, schedule, pairs, t_all, noise)
    (x_t,) = net.inputs
    abar = {m: schedule.abar(t_all, x.ndim) for m, x in pairs.items()}
    a_t, v_t = x_t["audio"].split([b, k, k]), x_t["video"].split([b, k, k])
    a_n, v_n = a_t[0], v_t[0]  # the positives' noisy inputs
    assert torch.equal(v_t[1], v_n[sub])  # (a', v): the unchanged video enters as the positive's v_n
    assert torch.equal(a_t[2], a_n[sub])  # (a, v'): the unchanged audio as the positive's a_n
    eps_a, eps_v = noise["audio"].split([b, k, k]), noise["video"].split([b, k, k])
    # the corrupted modality: its own negative clip, noised with fresh noise (not the positive's)
    torch.testing.assert_close(a_t[1], noisy(neg["audio"][sub], eps_a[1], abar["audio"][b : b + k]))
    torch.testing.assert_close(v_t[2], noisy(neg["video"][sub], eps_v[2], abar["video"][b + k :]))
    assert not torch.allclose(eps_a[1], eps_a[0][sub]) and not torch.allclose(eps_v[2], eps_v[0][sub])
    # each row's loss is its own pair's targets (a zero network: the squared targets), Eq. 2 weighting
    target = {m: v_from_x0_eps(pairs[m], noise[m], abar[m]) for m in pairs}
    torch.testing.assert_close(loss, modality_squared_error(target, {m: 0 * v for m, v in target.items()}, "joint"))
    torch.testing.assert_close(target["video"][b : b + k], target["video"][:b][sub])  # v's target: the positive's


def test_the_other_noise_modes_and_legacy_names():
    x0, _, sub, _ = _pairs()
    shared, independent = negative_pair_noise(x0, sub, "shared_both"), negative_pair_noise(x0, sub, "independent")
    for m in x0:
        pos, neg_a, neg_v = shared[m].split([4, 2, 2])
        assert torch.equal(neg_a, pos[sub]) and torch.equal(neg_v, pos[sub])  # both modalities: the positive's
        pos, neg_a, neg_v = independent[m].split([4, 2, 2])
        assert not torch.allclose(neg_a, pos[sub]) and not torch.allclose(neg_v, pos[sub])
    assert noise_mode("shared") == "shared_both"  # what runs before the modes were named recorded
    with pytest.raises(ValueError, match="algorithm1, shared_both, independent"):
        noise_mode("exact")


def test_joint_weighting_is_one_squared_norm_over_both_modalities():
    torch.manual_seed(1)
    target = {"audio": torch.randn(3, 4, 5), "video": torch.randn(3, 2, 3, 4, 4)}
    pred = {m: torch.randn_like(v) for m, v in target.items()}
    flat = torch.cat([(target[m] - pred[m]).flatten(1) for m in target], dim=1)  # (B, D_a + D_v)
    torch.testing.assert_close(modality_squared_error(target, pred, "joint"), flat.pow(2).sum(1) / flat.shape[1])
    per = sum((target[m] - pred[m]).pow(2).flatten(1).mean(1) for m in target)
    torch.testing.assert_close(modality_squared_error(target, pred, "per_modality"), per)
    with pytest.raises(ValueError, match="joint, per_modality"):
        modality_squared_error(target, pred, "paper")


def test_normalized_dsm_is_the_summed_form_over_the_element_count():
    torch.manual_seed(2)
    noise = {"audio": torch.randn(3, 4, 5), "video": torch.randn(3, 2, 3, 4, 4)}
    eps = {m: torch.randn_like(v) for m, v in noise.items()}
    sigma = {m: torch.rand(3).reshape(3, *[1] * (v.ndim - 1)) for m, v in noise.items()}
    grads = {m: torch.randn_like(v) for m, v in noise.items()}
    d_a, d_v = 4 * 5, 2 * 3 * 4 * 4
    summed = dsm_loss(noise, eps, sigma, grads, "sum")
    normalized = dsm_loss(noise, eps, sigma, grads, "normalized")
    torch.testing.assert_close(normalized, summed / (d_a + d_v))
    # both modalities scaled alike: each one's share of L_dsm is the same in the normalized and summed forms
    one = {"audio": noise["audio"], "video": torch.zeros_like(noise["video"])}
    zero_grads = {m: torch.zeros_like(g) for m, g in grads.items()}
    zero_eps = {m: torch.zeros_like(e) for m, e in eps.items()}
    audio_share = dsm_loss(one, zero_eps, sigma, zero_grads, "normalized") / dsm_loss(
        noise, zero_eps, sigma, zero_grads, "normalized"
    )
    audio_share_sum = dsm_loss(one, zero_eps, sigma, zero_grads, "sum") / dsm_loss(
        noise, zero_eps, sigma, zero_grads, "sum"
    )
    torch.testing.assert_close(audio_share, audio_share_sum)
    mean = dsm_loss(noise, eps, sigma, grads, "mean")  # the ablation: per-modality means
    assert not torch.allclose(mean, normalized)


def test_disc_loss_is_eq9_the_real_mean_plus_the_fake_mean():
    real, fake = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([-0.3, 1.5])
    per_sample = discriminator_loss(real, fake)
    eq9 = -torch.nn.functional.logsigmoid(real).mean() - torch.nn.functional.logsigmoid(-fake).mean()
    torch.testing.assert_close(reduce_discriminator_loss(per_sample, 3, "sum"), eq9)
    torch.testing.assert_close(reduce_discriminator_loss(per_sample, 3, "mean"), per_sample.mean())


def _optimizer_after_steps(net, steps, lr=1e-3):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        sum(p.pow(2).sum() for p in net.parameters()).backward()
        opt.step()
    return opt


def test_a_continued_schedule_equals_the_uninterrupted_one_at_every_step():
    every, factor, floor, parent_steps, steps = 3, 0.5, 0.05, 7, 12
    net = torch.nn.Linear(2, 2)

    def lrs(offset, n):
        opt = torch.optim.SGD(net.parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, partial(step_decay, every=every, factor=factor, floor_ratio=floor, offset=offset)
        )
        out = []
        for _ in range(n):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    uninterrupted = lrs(0, parent_steps + steps)
    assert lrs(parent_steps, steps) == uninterrupted[parent_steps:]
    assert lrs(0, steps) != uninterrupted[parent_steps:]  # a restarted schedule would not be


def test_a_continuation_restores_the_parents_weights_and_optimizer_state():
    torch.manual_seed(3)
    parent = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = _optimizer_after_steps(parent, 5)
    ema = {f"net.{k}": v * 0.5 for k, v in parent.state_dict().items()}
    ckpt = {
        "global_step": 5,
        "state_dict": ema,
        "current_model_state": {f"net.{k}": v.clone() for k, v in parent.state_dict().items()},
        "optimizer_states": [opt.state_dict()],
    }
    cont = Continuation.from_checkpoint(ckpt, "parent.ckpt")
    child = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    child_opt = torch.optim.Adam(child.parameters(), lr=7e-4)
    assert cont.step == 5 and cont.apply(child, child_opt) is None
    for p, q in zip(parent.parameters(), child.parameters()):
        assert torch.equal(p, q)  # the training weights, not the EMA ones
    saved = opt.state_dict()["state"]
    for i, state in child_opt.state_dict()["state"].items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(state[key], saved[i][key])
    assert child_opt.param_groups[0]["lr"] == 7e-4  # this run's hyperparameters (the schedule sets the lr)
    # the same state continues to step as the parent's optimizer would
    for net, o in ((parent, opt), (child, child_opt)):
        o.zero_grad()
        sum(p.pow(2).sum() for p in net.parameters()).backward()
    opt.param_groups[0]["lr"] = 7e-4
    opt.step()
    child_opt.step()
    for p, q in zip(parent.parameters(), child.parameters()):
        torch.testing.assert_close(p, q)


def test_a_continuation_of_another_optimizer_starts_fresh_moments_and_says_why():
    parent = torch.nn.Linear(3, 4)
    opt = _optimizer_after_steps(parent, 2)
    ckpt = {"global_step": 2, "state_dict": {}, "optimizer_states": [opt.state_dict()]}
    wider = torch.nn.Linear(3, 5)
    with pytest.warns(UserWarning, match="shape"):
        reason = Continuation.from_checkpoint(ckpt, "p.ckpt").apply(
            torch.nn.Identity(), torch.optim.Adam(wider.parameters())
        )
    assert "shape" in reason
    sgd = torch.optim.SGD(torch.nn.Linear(3, 4).parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "another optimizer" in Continuation.from_checkpoint(ckpt, "p.ckpt").apply(torch.nn.Identity(), sgd)
    with pytest.raises(ValueError, match="global_step"):
        Continuation.from_checkpoint({"state_dict": {}}, "weights.ckpt")


def test_cmmd_defaults_are_the_papers():
    from avgen.config import load_config

    cfg = load_config("train", experiment="cmmd_aistpp")
    assert cfg.method.negative_noise == "algorithm1" and cfg.method.modality_weighting == "joint"
    assert cfg.method.continue_schedule is True
    control = load_config("train", experiment="ncmmd_continued_aistpp")
    assert control.method.eta == 0.0 and control.method.init_from == cfg.method.init_from
    assert control.method.continue_schedule and control.trainer.max_steps == cfg.trainer.max_steps
    assert CMMDModule.variant(cfg).endswith("continued")


def test_compare_pairs_each_run_with_its_control():
    """`make compare` lists run - control (same seed, the registry's runs, not their variants), oriented."""
    from avgen.evaluation.differences import control_differences

    rows = [
        {"run": "cmmd_synthetic", "experiment": "cmmd_synthetic", "seed": 0},
        {"run": "ncmmd_synthetic", "experiment": "ncmmd_synthetic", "seed": 0},
        {"run": "cmmd_synthetic_joint", "experiment": "cmmd_synthetic", "seed": 0},  # a variant: no control
        {"run": "ncmmd_synthetic_seed1", "experiment": "ncmmd_synthetic", "seed": 1},
    ]
    d = {"metric": "lag_contrast", "difference": -0.1, "interval": [-0.2, -0.05], "resolved": True}
    paired = [
        {**d, "a": "ncmmd_synthetic", "b": "cmmd_synthetic"},
        {**d, "a": "cmmd_synthetic_joint", "b": "ncmmd_synthetic"},
        {**d, "a": "cmmd_synthetic", "b": "ncmmd_synthetic_seed1"},
    ]
    (only,) = control_differences(rows, paired, [])
    assert (only["a"], only["b"], only["difference"], only["interval"]) == (
        "cmmd_synthetic",
        "ncmmd_synthetic",
        0.1,
        [0.05, 0.2],
    )


@pytest.mark.slow
def test_a_continued_fine_tune_resumes_the_parents_schedule_and_moments(synthetic_store, tmp_path):
    """Through `avgen train`: nCMMD 4 steps, then CMMD continuing it for 2: the child's learning rate is the
    uninterrupted schedule's at step 6, its Adam moments start from the parent's (not from zero)."""
    from avgen.cli.main import main
    from avgen.suite import smoke_overrides
    from tests.test_method_contract import workspace

    common = [*workspace(tmp_path, synthetic_store), "method.lr_decay_every=3", "method.lr_decay_factor=0.5"]
    common += ["method.lr_floor=1e-9", "callbacks.ema.decay=0.9"]
    assert main(["train", "experiment=ncmmd_synthetic", *smoke_overrides("ncmmd_synthetic"), *common,
                 "trainer.max_steps=4"]) == 0  # fmt: skip
    parent = tmp_path / "outputs" / "ncmmd_synthetic" / "checkpoints" / "last.ckpt"
    child = [
        "train",
        "experiment=cmmd_synthetic",
        *smoke_overrides("cmmd_synthetic"),
        *common,
        f"method.init_from={parent}",
        "method.continue_schedule=true",
        "method.contrastive_from_step=0",
        "trainer.max_steps=2",
    ]
    assert main(child) == 0
    parent_ckpt = torch.load(parent, weights_only=True)
    ckpt = torch.load(tmp_path / "outputs" / "cmmd_synthetic" / "checkpoints" / "last.ckpt", weights_only=True)
    base = ckpt["optimizer_states"][0]["param_groups"][0]["initial_lr"]
    (lr,) = ckpt["lr_schedulers"][0]["_last_lr"]
    assert lr == pytest.approx(base * step_decay(6, 3, 0.5, 1e-9 / base))  # 4 parent + 2 own steps: 0.25 x
    step = ckpt["optimizer_states"][0]["state"][0]["step"]
    assert int(step) == int(parent_ckpt["optimizer_states"][0]["state"][0]["step"]) + 2  # Adam's count went on
