"""MMDisCo losses (paper §3; docs/methods.md#mmdisco) as pure functions returning per-sample losses."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from avgen.diffusion.conversions import eps_from_x0, noisy
from avgen.diffusion.weighting import modality_squared_error


# MMDisCo Eq. 10: binary cross-entropy, real noisy pairs -> 1, fake noisy pairs -> 0 (stable logits form)
def discriminator_loss(logit_real: Tensor, logit_fake: Tensor) -> Tensor:
    """Per-sample BCE of the real and the fake logits, (B_real + B_fake,)."""
    return torch.cat(
        [
            F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real), reduction="none"),
            F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake), reduction="none"),
        ]
    )


DISC_REDUCTIONS = ("sum", "mean")


# MMDisCo Eq. 9: L_disc = E_real[-log d] + E_fake[-log(1 - d)]
def reduce_discriminator_loss(per_sample: Tensor, num_real: int, reduction: str = "sum") -> Tensor:
    """L_disc from `discriminator_loss`'s per-sample terms: `sum` = the real mean plus the fake mean (Eq. 9);
    `mean` = one mean over real and fake together, half of Eq. 9 at equal batch sizes (runs before the
    option: their lambda counted double against it)."""
    if reduction not in DISC_REDUCTIONS:
        raise ValueError(f"method.disc_reduction must be one of {', '.join(DISC_REDUCTIONS)}, got {reduction!r}")
    if reduction == "mean":
        return per_sample.mean()
    real, fake = per_sample[:num_real], per_sample[num_real:]
    return real.mean() + fake.mean()


def logit_gradients(
    discriminator, x_t: dict[str, Tensor], t: Tensor, create_graph: bool, **kwargs
) -> tuple[Tensor | dict[str, Tensor], dict[str, Tensor]]:
    """The logits d_phi(x_t, t) and grad_{x_t^m} d_phi for every modality m.

    With `create_graph=True` the gradients stay differentiable w.r.t. the discriminator's parameters
    (double backprop, needed by L_dsm); without, nothing records a graph to the parameters (torch.func
    differentiates w.r.t. the inputs even under the no_grad used here). A discriminator may return one logit
    per modality ({m: (B,)}, e.g. the residual with a per-modality CFG scale): then grad_{x_t^m} is taken of
    modality m's own logit.

    Written with `torch.func.vjp`, not `torch.autograd.grad`, so that `torch.compile` captures it whole: the
    input gradient is then part of the compiled forward graph and L_dsm's parameter gradient a first-order
    backward of it (AOTAutograd does not support a double backward through `autograd.grad`).
    """

    def logits_of(x: dict[str, Tensor]) -> Tensor | dict[str, Tensor]:
        return discriminator(x, t, **kwargs)

    with contextlib.nullcontext() if create_graph else torch.no_grad():
        logits, vjp = torch.func.vjp(logits_of, {m: x.detach() for m, x in x_t.items()})
        if isinstance(logits, dict):  # each modality's gradient of its own logit
            grads = {
                m: vjp({k: torch.ones_like(v) if k == m else torch.zeros_like(v) for k, v in logits.items()})[0][m]
                for m in x_t
            }
        else:
            grads = vjp(torch.ones_like(logits))[0]
    return logits, grads


# MMDisCo Eqs. 11-12: eps_joint_m = eps_m - s_m * sigma_t^m * grad_{x_t^m} d_phi
def joint_eps(eps: Tensor, sigma: Tensor, grad: Tensor, scale: float = 1.0) -> Tensor:
    return eps - scale * sigma * grad


# MMDisCo Eqs. 13-15 (DLSM-style): the guided prediction (s = 1) must denoise the real pair
def dsm_loss(
    noise: dict[str, Tensor],
    eps_base: dict[str, Tensor],
    sigma: dict[str, Tensor],
    grads: dict[str, Tensor],
    reduction: str = "normalized",
) -> Tensor:
    """Per-sample ||eps - eps_joint||^2 over both modalities, (B,), reduced by `reduction`:

    - `normalized`: the squared norm over every element of both modalities divided by D_a + D_v: the paper's
      L_dsm times one global constant, so lambda is re-weighted and the audio/video balance is the paper's;
    - `sum`: the squared norm itself (the paper's notation; lambda = 1 then lets L_dsm outweigh L_disc by
      orders of magnitude on the synthetic store, docs/methods.md#mmdisco);
    - `mean`: each modality's mean, summed: weights lambda / D_a and lambda / D_v, so it also moves the
      audio/video balance inside L_dsm by D_v / D_a (an ablation; runs before `normalized` used it).
    """
    check_dsm_reduction(reduction)
    guided = {m: joint_eps(eps_base[m], sigma[m], grads[m]) for m in noise}
    if reduction == "sum":
        return sum((noise[m] - guided[m]).pow(2).flatten(1).sum(1) for m in noise)
    return modality_squared_error(noise, guided, "joint" if reduction == "normalized" else "per_modality")


DSM_REDUCTIONS = ("normalized", "sum", "mean")


def check_dsm_reduction(reduction: str) -> None:
    if reduction not in DSM_REDUCTIONS:
        raise ValueError(f"method.dsm_reduction must be one of {', '.join(DSM_REDUCTIONS)}, got {reduction!r}")


def _noised_real(
    bases, real: dict[str, Tensor], t: Tensor, generator: torch.Generator | None
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """abar_t, the added noise and x_t of the real pairs (fresh noise per modality, one t for both)."""
    abar = {m: bases.abar(m, t, x) for m, x in real.items()}
    noise = {m: torch.randn(x.shape, generator=generator).to(x) for m, x in real.items()}
    return abar, noise, {m: noisy(real[m], noise[m], abar[m]) for m in real}


def _base_eps(bases, x_t: dict[str, Tensor], t: Tensor, abar: dict[str, Tensor]) -> dict[str, Tensor]:
    """The frozen bases' eps predictions, outputs only (no graph)."""
    with torch.no_grad():
        x0 = bases(x_t, t)
        return {m: eps_from_x0(x_t[m], x0[m], abar[m]) for m in x_t}


def mmdisco_loss(
    discriminator,
    bases,
    real: dict[str, Tensor],
    fake: dict[str, Tensor] | None,
    t: Tensor,
    generator: torch.Generator | None = None,
    use_disc: bool = True,
    use_dsm: bool = True,
    dsm_weight: float = 1.0,
    real_kwargs: dict[str, Any] | None = None,
    fake_kwargs: dict[str, Any] | None = None,
    dsm_reduction: str = "normalized",
    gradients=logit_gradients,
    disc_reduction: str = "sum",
) -> tuple[Tensor, dict[str, Tensor]]:
    """L = L_disc + lambda L_dsm for one batch (scalar), and its terms for logging (`disc`, `dsm`, and the
    discriminator's accuracy on this batch, `disc_accuracy`).

    One t per example for both modalities, fresh noise per modality; the bases only give outputs, under
    no_grad. `use_disc` / `use_dsm` switch the two terms off for the ablations; `dsm_reduction` as in
    `dsm_loss`, `disc_reduction` as in `reduce_discriminator_loss`. `real_kwargs` / `fake_kwargs`
    go to the discriminator's calls on each side (out of domain: each pair's own prompt, `text=`).
    `gradients`: `logit_gradients` or its torch.compile'd form (`MMDisCoModule.compile_networks`).
    """
    real_kwargs, fake_kwargs = real_kwargs or {}, fake_kwargs or {}
    abar, noise, real_t = _noised_real(bases, real, t, generator)
    terms: dict[str, Tensor] = {}
    logit_real = None
    if use_dsm:  # one forward on the real pairs serves both terms: its logits and (double-backprop) gradients
        eps_base = _base_eps(bases, real_t, t, abar)
        logit_real, grads = gradients(discriminator, real_t, t, create_graph=True, **real_kwargs)
        sigma = {m: (1 - abar[m]).sqrt() for m in real}
        terms["dsm"] = dsm_loss(noise, eps_base, sigma, grads, dsm_reduction).mean()
    if use_disc:
        fake_t = {m: noisy(fake[m], torch.randn(fake[m].shape, generator=generator).to(fake[m]), abar[m]) for m in fake}
        logit_real = discriminator(real_t, t, **real_kwargs) if logit_real is None else logit_real
        logit_fake = discriminator(fake_t, t, **fake_kwargs)
        terms["disc"] = reduce_discriminator_loss(
            discriminator_loss(logit_real, logit_fake), logit_real.shape[0], disc_reduction
        )
        with torch.no_grad():
            terms["disc_accuracy"] = ((logit_real > 0).float().mean() + (logit_fake < 0).float().mean()) / 2
    loss = terms.get("disc", torch.zeros(())) + dsm_weight * terms.get("dsm", torch.zeros(()))
    return loss, terms


def denoising_errors(
    discriminator,
    bases,
    real: dict[str, Tensor],
    t: Tensor,
    generator: torch.Generator | None = None,
    reduction: str = "normalized",
    gradients=logit_gradients,
    **disc_kwargs: Any,
) -> tuple[Tensor, Tensor]:
    """Per-sample squared errors (B,), (B,) of the bases' eps and of the guided eps (s = 1) on noised real pairs:
    L_dsm's two ends. The guided error below the bases' means the discriminator's residual denoises real pairs
    better, i.e. moves the bases toward the real joint (a validation signal that needs no fake pairs)."""
    abar, noise, real_t = _noised_real(bases, real, t, generator)
    eps_base = _base_eps(bases, real_t, t, abar)
    _, grads = gradients(discriminator, real_t, t, create_graph=False, **disc_kwargs)
    sigma = {m: (1 - abar[m]).sqrt() for m in real}
    zero = {m: torch.zeros_like(g) for m, g in grads.items()}
    return (
        dsm_loss(noise, eps_base, sigma, zero, reduction).detach(),
        dsm_loss(noise, eps_base, sigma, grads, reduction).detach(),
    )
