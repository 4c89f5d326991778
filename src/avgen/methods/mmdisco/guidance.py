"""Discriminator guidance (MMDisCo Eqs. 11-12) as a denoiser wrapper: samplers are never edited.

    eps_joint_m = eps_m(x_t^m, t) - s_m * sigma_t^m * grad_{x_t^m} d_phi(a_t, v_t, t)

The base denoiser is used as a black box (only its outputs); no gradient flows into it. Scale 0 for every
modality is exactly the unguided ("no joint") sampler.

`min_alpha`: no guidance where sqrt(abar_t) < min_alpha. A solver step from t turns an eps change delta into a
sample change of about delta * alpha_s / alpha_t; near t = T of a cosine schedule alpha_t ~ 1.5e-3, so the
small residual an imperfect discriminator leaves there (the true density ratio is 1 at pure noise) is
amplified ~150x and throws the trajectory off the data (measured on the synthetic store: logits jumped from
-0.5 to +1000 after the first guided step, and every metric fell to zero). Linear schedules (the paper's)
end at alpha_T ~ 6e-3 and are barely affected.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avgen.diffusion.conversions import eps_from_x0, x0_from_eps
from avgen.diffusion.denoiser import Denoiser
from avgen.methods.mmdisco.losses import joint_eps, logit_gradients
from avgen.sampling.cost import record


class DiscriminatorGuidance(Denoiser):
    def __init__(
        self,
        base: Denoiser,
        discriminator: nn.Module,
        scales: dict[str, float],
        min_alpha: float = 0.0,
        gradients=logit_gradients,
    ):
        """gradients: `losses.logit_gradients` or its torch.compile'd form."""
        super().__init__()
        self.base, self.discriminator, self.gradients = base, discriminator, gradients
        self.schedules = base.schedules
        self.scales = {m: float(scales.get(m, 0.0)) for m in base.modalities}
        self.min_alpha = min_alpha

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            x0 = self.base(x, t)
        if not any(self.scales.values()):
            return x0
        _, grads = self.gradients(self.discriminator, x, t, create_graph=False)
        record("discriminator_gradient", t.shape[0])  # the discriminator's forward and input gradient
        out = {}
        for m in self.modalities:
            abar = self.abar(m, t, x[m])
            eps = eps_from_x0(x[m], x0[m], abar)
            active = (abar.sqrt() >= self.min_alpha).to(eps.dtype)  # (B, 1, ...): per example
            eps = joint_eps(eps, (1 - abar).sqrt(), active * grads[m].detach(), self.scales[m])
            out[m] = x0_from_eps(x[m], eps, abar)
        return out


class TextDiscriminator(nn.Module):
    """A text discriminator bound to prompts, with classifier-free guidance on its residual (docs/methods.md#mmdisco):
    d = d_u + w (d_c - d_u), from a conditional and an empty-prompt call. Its input gradient is the CFG
    combination of the two residuals, so `DiscriminatorGuidance` wraps it unchanged; w = 1 is the plain
    conditional discriminator (with empty prompts as `cond`: the unconditional one). Per-modality scales
    ({"audio": 2.5, "video": 7.5}: each base's own CFG scale) return one logit per modality, each
    differentiated for its own modality (`losses.logit_gradients`)."""

    def __init__(
        self,
        discriminator: nn.Module,
        cond: dict[str, Tensor],
        uncond: dict[str, Tensor],
        scale: float | dict[str, float] = 1.0,
    ):
        super().__init__()
        self.discriminator, self.cond, self.uncond = discriminator, cond, uncond
        self.scale = {m: float(s) for m, s in scale.items()} if isinstance(scale, dict) else float(scale)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> Tensor | dict[str, Tensor]:
        d_c = self.discriminator(x, t, text=self.cond)
        scales = set(self.scale.values()) if isinstance(self.scale, dict) else {self.scale}
        if scales == {1.0}:
            return d_c
        d_u = self.discriminator(x, t, text=self.uncond)
        if len(scales) == 1:
            return d_u + scales.pop() * (d_c - d_u)
        return {m: d_u + w * (d_c - d_u) for m, w in self.scale.items()}


def drop_prompts(prompts: list[str], p: float, generator: torch.Generator | None = None) -> list[str]:
    """Each prompt replaced by the empty prompt with probability p (the discriminator's 10% text dropout, which
    teaches it the unconditional residual that CFG needs)."""
    keep = torch.rand(len(prompts), generator=generator) >= p
    return [q if k else "" for q, k in zip(prompts, keep.tolist())]
