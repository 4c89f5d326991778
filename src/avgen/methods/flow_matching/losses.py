"""Flow-matching loss (docs/methods.md#flow-matching) as a pure function returning per-sample losses."""

from __future__ import annotations

from torch import Tensor, nn

from avgen.diffusion.conversions import flow_velocity
from avgen.diffusion.flow import FlowSchedule
from avgen.diffusion.weighting import modality_squared_error


# Conditional flow matching on the straight path (Lipman et al. 2023, Eq. 23; rectified flow):
# L = || u_theta(x_sigma, sigma) - (eps - x0) ||^2, summed over the modalities
def flow_matching_loss(
    net: nn.Module,
    schedule: FlowSchedule,
    x0: dict[str, Tensor],
    t: Tensor,
    noise: dict[str, Tensor],
    weighting: str = "joint",
) -> Tensor:
    """Per-sample joint flow-matching loss, (B,): one t for both modalities (the joint path); `weighting`
    adds the modalities up as one squared norm (`joint`) or per-modality means (diffusion/weighting.py)."""
    x_t = {}
    for m, x in x0.items():
        alpha, sigma = schedule.coefficients(t, x.ndim)
        x_t[m] = alpha * x + sigma * noise[m]
    target = {m: flow_velocity(x0[m], noise[m]) for m in x0}
    return modality_squared_error(target, net(x_t, t), weighting)
