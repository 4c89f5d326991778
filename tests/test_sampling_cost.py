"""What a sample costs (sampling/cost.py): the NFE the sampler reports equals the network calls a counting
network sees, for every solver, with and without guidance; guidance's extra passes are counted too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avgen.diffusion.denoiser import NetworkDenoiser
from avgen.diffusion.flow import FlowSchedule
from avgen.diffusion.schedule import NoiseSchedule
from avgen.methods.mmdisco.guidance import DiscriminatorGuidance
from avgen.methods.mmdisco.losses import logit_gradients
from avgen.sampling.cost import SamplingCost, steps_for_nfe
from avgen.sampling.samplers import generate, initial_noise, sample

SHAPES = {"audio": (3, 2, 6), "video": (3, 4, 1, 2, 2)}


class CountingNet(nn.Module):
    """A joint network that counts its forward calls, and the backward passes through it (to its inputs)."""

    modalities = ("audio", "video")

    def __init__(self):
        super().__init__()
        self.mix = nn.Parameter(torch.tensor(0.1))
        self.forwards = self.backwards = 0

    def forward(self, x, t):
        self.forwards += 1
        a, v = x["audio"], x["video"]
        out = {
            "audio": self.mix * a + 0.01 * v.mean((1, 2, 3, 4))[:, None, None],
            "video": self.mix * v + 0.01 * a.mean((1, 2))[:, None, None, None, None],
        }
        for leaf in (t for t in x.values() if t.requires_grad):  # a gradient reaching an input: one backward
            leaf.register_hook(self._count_backward)
        return out

    def _count_backward(self, grad):
        self.backwards += 1
        return grad


def denoiser(kind: str) -> NetworkDenoiser:
    schedule, prediction = (FlowSchedule(), "velocity") if kind.startswith("flow") else (NoiseSchedule(), "v")
    return NetworkDenoiser(CountingNet(), {"audio": schedule, "video": schedule}, prediction=prediction)


@pytest.mark.parametrize("sampler", ["ddim", "dpm_solver", "flow_euler", "flow_heun"])
@pytest.mark.parametrize("guided", [False, True])
def test_the_reported_nfe_is_what_the_network_saw(sampler, guided):
    d = denoiser(sampler)
    with SamplingCost() as cost:
        if guided:  # video-to-audio by reconstruction guidance: a backward through the network per call
            generate(
                d,
                SHAPES,
                "cpu",
                steps=4,
                known={"video": torch.rand(SHAPES["video"])},
                guidance_scale=1.0,
                sampler=sampler,
                seeds=[0, 1, 2],
            )
        else:
            sample(d, initial_noise(SHAPES, seeds=[0, 1, 2]), sampler, 4)
    counted = cost.per_sample(3)
    assert counted["nfe"] == d.net.forwards  # each call evaluates the network once for every sample
    assert counted.get("guidance_backward", 0) == d.net.backwards == (d.net.forwards if guided else 0)
    calls_per_step = 2 if sampler == "flow_heun" else 1
    assert abs(counted["nfe"] - 4 * calls_per_step) <= 1  # Heun's last step evaluates once


def test_discriminator_guidance_counts_its_gradients_only_when_it_guides():
    d = denoiser("ddim")
    calls = []

    def counted_gradients(*args, **kwargs):
        calls.append(1)
        return logit_gradients(*args, **kwargs)

    disc = lambda x, t: sum(x[m].flatten(1).sum(1) for m in x)  # noqa: E731 - a linear logit
    for scales, expected in (({"audio": 1.0, "video": 1.0}, 4), ({"audio": 0.0, "video": 0.0}, 0)):
        calls.clear()
        with SamplingCost() as cost:
            sample(
                DiscriminatorGuidance(d, disc, scales, gradients=counted_gradients),
                initial_noise(SHAPES, seeds=[0, 1, 2]),
                "ddim",
                4,
            )
        assert cost.per_sample(3).get("discriminator_gradient", 0) == len(calls) == expected
        assert cost.per_sample(3)["nfe"] == 4


def test_nothing_is_recorded_outside_a_meter_and_nfe_sets_the_steps():
    sample(denoiser("ddim"), initial_noise(SHAPES, seeds=[0, 1, 2]), "ddim", 2)  # no meter: no error, no record
    assert steps_for_nfe(20, "ddim") == 20 and steps_for_nfe(20, "flow_heun") == 10
    d = denoiser("flow_heun")
    with SamplingCost() as cost:
        sample(d, initial_noise(SHAPES, seeds=[0, 1, 2]), "flow_heun", steps_for_nfe(20, "flow_heun"))
    assert abs(cost.per_sample(3)["nfe"] - 20) <= 1
