"""CMMD losses (paper §2; docs/methods.md#cmmd) as pure functions of tensors returning per-sample losses."""

from __future__ import annotations

from torch import Tensor, nn

from avgen.diffusion.conversions import noisy, v_from_x0_eps
from avgen.diffusion.schedule import NoiseSchedule
from avgen.diffusion.weighting import modality_squared_error


# CMMD Eq. 2: L_jdiff(a, v) = ||v_target(a) - v_hat_a||^2 + ||v_target(v) - v_hat_v||^2
def joint_diffusion_loss(
    net: nn.Module,
    schedule: NoiseSchedule,
    x0: dict[str, Tensor],
    t: Tensor,
    noise: dict[str, Tensor],
    weighting: str = "joint",
) -> Tensor:
    """Per-sample joint v-prediction loss, (B,); `weighting` adds the modalities up as Eq. 2 does (`joint`) or
    with each modality averaged over its own elements (`per_modality`; diffusion/weighting.py)."""
    abar = {m: schedule.abar(t, x.ndim) for m, x in x0.items()}
    x_t = {m: noisy(x0[m], noise[m], abar[m]) for m in x0}
    target = {m: v_from_x0_eps(x0[m], noise[m], abar[m]) for m in x0}
    return modality_squared_error(target, net(x_t, t), weighting)


# CMMD Eq. 6: L_cont = L_jdiff(a, v) - eta E_{a'} L_jdiff(a', v) - eta E_{v'} L_jdiff(a, v')
def contrastive_loss(
    positive: Tensor, negative_audio: Tensor, negative_video: Tensor, eta: float, max_negative: float | None = None
) -> Tensor:
    """Contrastive loss from joint losses of the positive and the two negatives: per sample, or from their
    batch means when only a subset of the examples got negatives.

    The negative terms are unbounded below; `max_negative` (None = the paper's unbounded form) caps each
    negative loss so a collapsing model cannot drive the total to minus infinity.
    """
    if max_negative is not None:
        negative_audio, negative_video = negative_audio.clamp(max=max_negative), negative_video.clamp(max=max_negative)
    return positive - eta * negative_audio - eta * negative_video
