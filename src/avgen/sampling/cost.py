"""What sampling costs, counted where it happens: a `SamplingCost` meter, active in a `with` block, to which
the sampler reports every denoiser call (the NFE: network function evaluations, each call one evaluation
per sample) and guidance wrappers report their extra passes (reconstruction guidance's backward through the
network, MMDisCo's discriminator forward + input gradient, classifier-free guidance's unconditional pass).
Counts are per sample: each report adds the batch size, and `per_sample` divides by the samples generated.
Nothing is recorded outside a `with` block, so samplers stay plain functions of a denoiser.
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar

_ACTIVE: ContextVar[SamplingCost | None] = ContextVar("avgen_sampling_cost", default=None)

# calls of the denoiser per solver step: Heun evaluates twice (diffusers repeats its timesteps)
CALLS_PER_STEP = {"flow_heun": 2}


class SamplingCost:
    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.gflops_per_sample: float | None = None  # measured on one batch by whoever samples under it
        self._token = None

    def __enter__(self) -> SamplingCost:
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.reset(self._token)

    def per_sample(self, num: int) -> dict[str, float]:
        """{nfe, <extra pass>...} per generated sample."""
        return {kind: n / num for kind, n in sorted(self.counts.items())} if num else {}


def record(kind: str, batch: int) -> None:
    """`batch` samples each went through one `kind` pass (no-op outside a SamplingCost block)."""
    meter = _ACTIVE.get()
    if meter is not None:
        meter.counts[kind] += batch


def steps_for_nfe(nfe: int, sampler: str) -> int:
    """Solver steps that give about `nfe` denoiser calls with `sampler` (`evaluate.nfe`)."""
    return max(1, round(nfe / CALLS_PER_STEP.get(sampler, 1)))
