"""`compile=true` for every method, on the CPU with tiny networks against eager (backend aot_eager: the
same graph capture and autograd as inductor, without code generation): equal outputs and gradients; MMDisCo
compiles its frozen bases, its discriminator and L_dsm's double backward (via torch.func)."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch

from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.cmmd.module import CMMDModule
from avgen.methods.cmmd.negatives import NegativeSampler
from avgen.models.unets.dual_unet import DualUNet

SMALL = dict(
    base_channels=8,
    channel_mult=[1, 2],
    num_res_blocks=1,
    attention_levels=[1],
    head_dim=8,
    video_channels=3,
    audio_channels=16,
)


def _perturbed(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # zero-initialised output layers would make every output 0
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net


@pytest.mark.slow  # whole-CLI run, subprocess or compile: the slow tier
def test_cmmd_compiles_to_the_same_outputs_and_gradients():
    eager = CMMDModule(
        _perturbed(DualUNet(**SMALL, coupling="easy_fusion")),
        NoiseSchedule(),
        partial(torch.optim.Adam),
        NegativeSampler(),
    )
    compiled = copy.deepcopy(eager)
    assert compiled.compile_networks(backend="aot_eager") == ["net"]
    x, t = {"audio": torch.randn(2, 16, 8), "video": torch.randn(2, 4, 3, 8, 8)}, torch.tensor([10, 700])
    outs = [m.net(x, t) for m in (eager, compiled)]
    for k in outs[0]:
        torch.testing.assert_close(outs[1][k], outs[0][k], rtol=1e-5, atol=1e-5)
    grads = [
        torch.autograd.grad(sum(o.pow(2).sum() for o in out.values()), m.net.branches["audio"].layers[0].weight)[0]
        for m, out in zip((eager, compiled), outs)
    ]
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)
    assert set(compiled.state_dict()) == set(eager.state_dict())  # checkpoints keep their keys


def _mmdisco(tmp_path, use_dsm: bool, head: str = "mlp"):
    from avgen.methods.mmdisco.bases import build_bases
    from avgen.methods.mmdisco.module import MMDisCoModule
    from avgen.models.discriminators.av_discriminator import AVDiscriminator

    torch.manual_seed(0)  # the same base and discriminator for every module built here
    joint = {**SMALL, "coupling": "easy_fusion"}
    net = _perturbed(DualUNet(**joint))
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
    disc = _perturbed(
        AVDiscriminator(
            video_channels=3,
            audio_channels=16,
            base_channels=8,
            channel_mult=(1,),
            blocks_per_level=1,
            head_dim=8,
            head=head,
            video_coords=True,
        )
    )
    return MMDisCoModule(
        disc,
        bases=build_bases(joint=str(tmp_path / "cmmd.ckpt")),
        optimizer=partial(torch.optim.Adam),
        fake_cache={},
        use_dsm=use_dsm,
    )


@pytest.mark.slow
@pytest.mark.parametrize("head", ["mlp", "transformer"])
def test_mmdisco_compiles_the_discriminator_with_its_double_backward(tmp_path, head):
    """fullgraph=True: the logits-and-input-gradients function (L_dsm's double backward) is captured whole,
    with no graph break; the loss, every discriminator gradient and a guided denoiser step equal eager."""
    from avgen.methods.mmdisco.guidance import DiscriminatorGuidance
    from avgen.methods.mmdisco.losses import mmdisco_loss

    real = {"audio": torch.randn(2, 16, 8), "video": torch.randn(2, 4, 3, 8, 8)}
    fake = {"audio": torch.randn(2, 16, 8), "video": torch.randn(2, 4, 3, 8, 8)}
    t = torch.tensor([100, 600])
    for use_dsm in (True, False):
        eager, compiled = _mmdisco(tmp_path, use_dsm, head), _mmdisco(tmp_path, use_dsm, head)
        names = compiled.compile_networks(backend="aot_eager", fullgraph=True)
        assert names == ["bases.joint", "net (the discriminator)", "its logit gradients"]
        losses, grads, guided = [], [], []
        for module in (eager, compiled):
            g = torch.Generator().manual_seed(3)
            loss, _ = mmdisco_loss(
                module.net,
                module.bases,
                real,
                fake,
                t,
                use_disc=True,
                use_dsm=use_dsm,
                generator=g,
                gradients=module.logit_gradients,
            )
            loss.backward()  # through the discriminator's double backward when use_dsm
            losses.append(float(loss))
            grads.append([p.grad for p in module.net.parameters()])
            denoiser = DiscriminatorGuidance(
                module.bases, module.net, {"audio": 1.0, "video": 1.0}, gradients=module.logit_gradients
            )
            guided.append(denoiser(real, t))
        assert abs(losses[1] - losses[0]) < 1e-4 * max(1.0, abs(losses[0])), (use_dsm, losses)
        for a, b in zip(*grads):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
        for m in real:
            torch.testing.assert_close(guided[1][m], guided[0][m], rtol=1e-4, atol=1e-6)
        assert set(compiled.state_dict()) == set(eager.state_dict())  # checkpoints keep their keys


@pytest.mark.slow
def test_gpu_check_times_the_default_step_eager_and_compiled(synthetic_store):
    """`make gpu-check`'s default_steps section, rehearsed on the CPU (aot_eager; CUDA graphs need a GPU)."""
    from avgen.bench.gpu_check import default_steps, format_results
    from avgen.config import load_config

    cfg = load_config("gpu_check", ["allow_cpu=true"])
    result = default_steps(
        cfg, "cpu", (f"data.store={synthetic_store}", "model.base_channels=8", "model.head_dim=8", "data.batch_size=4")
    )
    assert set(result) == {"eager", "compiled"} and all(r["steps_per_s"] > 0 for r in result.values()), result
    assert "default step, no Trainer, compiled" in format_results(
        {"device": "cpu", "torch": "x", "cuda": None, "default_steps": result}
    )
