"""MMDisCo losses (paper §3, SPEC §2) as pure functions returning per-sample losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


# MMDisCo Eq. 10: binary cross-entropy, real noisy pairs -> 1, fake noisy pairs -> 0 (stable logits form)
def discriminator_loss(logit_real: Tensor, logit_fake: Tensor) -> Tensor:
    """Per-sample BCE of the real and the fake logits, (B_real + B_fake,)."""
    return torch.cat([F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real), reduction="none"),
                      F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake), reduction="none")])


def logit_gradients(discriminator, x_t: dict[str, Tensor], t: Tensor, create_graph: bool,
                    **kwargs) -> tuple[Tensor, dict[str, Tensor]]:
    """The logits d_phi(x_t, t) and grad_{x_t^m} d_phi for every modality m.

    With `create_graph=True` the gradients stay differentiable w.r.t. the discriminator's parameters
    (double backprop, needed by L_dsm).
    """
    leaves = {m: x.detach().requires_grad_(True) for m, x in x_t.items()}
    with torch.enable_grad():
        logits = discriminator(leaves, t, **kwargs)
        grads = torch.autograd.grad(logits.sum(), list(leaves.values()), create_graph=create_graph)
    return logits, dict(zip(leaves, grads))


# MMDisCo Eqs. 11-12: eps_joint_m = eps_m - s_m * sigma_t^m * grad_{x_t^m} d_phi
def joint_eps(eps: Tensor, sigma: Tensor, grad: Tensor, scale: float = 1.0) -> Tensor:
    return eps - scale * sigma * grad


# MMDisCo Eqs. 13-15 (DLSM-style): the guided prediction (s = 1) must denoise the real pair
def dsm_loss(noise: dict[str, Tensor], eps_base: dict[str, Tensor], sigma: dict[str, Tensor],
             grads: dict[str, Tensor]) -> Tensor:
    """Per-sample sum over modalities of mean squared ||eps^m - eps_joint_m||, (B,)."""
    return sum((noise[m] - joint_eps(eps_base[m], sigma[m], grads[m])).pow(2).flatten(1).mean(1) for m in noise)
