"""Guidance as denoiser wrappers: the sampler is never edited (docs/methods.md).

`ReconstructionGuidance` implements CMMD Eq. 3 (conditional generation, after Ho et al.'s video diffusion
reconstruction guidance): for known modality m with clean value x0_m and a noise eps_m drawn once,

    x_t^m = alpha_t x0_m + sigma_t eps_m                                (replacement)
    x0_hat^u = x0_bar^u - lambda * alpha_t * grad_{x_t^u} || x0_m - x0_hat^m ||^2   (CMMD Eq. 3)

for the unknown modality u, with alpha_t = sqrt(abar_t) on a diffusion schedule and 1 - sigma on the flow
path (the known modality is then inpainted along the straight path). lambda = 0 is the replacement method.

`norm`: Eq. 3 sums the squared error over the known modality's n_k elements, so each unknown element's
gradient adds up the residuals of every known element it influences (about n_k / n_u of them): at the
synthetic store's 9,216 video and 384 mel values, 24 times what it is for two modalities of equal size, and
lambda over-drives (docs/methods.md#cmmd). "balanced" (the default) multiplies the error by n_u / n_k: the
gradient then carries the mean residual of the elements each unknown one influences, so a lambda means the
same at any shapes, and for equal sizes it is Eq. 3 unchanged. "sum" is Eq. 3 as written (runs before it). The
known modality's prediction is
returned as x0_m itself, so the sampler's copy of it converges to the condition.
"""

from __future__ import annotations

import torch
from torch import Tensor

from avgen.diffusion.denoiser import Denoiser
from avgen.sampling.cost import record

GUIDANCE_NORMS = ("balanced", "sum")


class ReconstructionGuidance(Denoiser):
    def __init__(
        self,
        denoiser: Denoiser,
        known: dict[str, Tensor],
        scale: float = 5.0,
        generator: torch.Generator | None = None,
        eps_known: Tensor | None = None,
        norm: str = "balanced",
    ):
        super().__init__()
        if len(known) != 1 or next(iter(known)) not in denoiser.modalities:
            raise ValueError(f"known must hold exactly one of {denoiser.modalities}, got {sorted(known)}")
        if norm not in GUIDANCE_NORMS:
            raise ValueError(f"guidance norm must be one of {GUIDANCE_NORMS}, got {norm!r}")
        self.inner, self.scale, self.norm = denoiser, float(scale), norm
        self.schedules = denoiser.schedules
        self.known_name, x0 = next(iter(known.items()))
        self.unknown = [m for m in denoiser.modalities if m != self.known_name]
        self.x0_known = x0
        # one fixed noise for the known modality, drawn once (CMMD Eq. 3), or given (seeded per sample)
        self.eps_known = (
            eps_known if eps_known is not None else torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
        )

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        k = self.known_name
        x = dict(x)
        alpha, sigma = self.coefficients(k, t, self.x0_known)
        x[k] = alpha * self.x0_known + sigma * self.eps_known
        if self.scale == 0.0:
            out = self.inner(x, t)  # replacement: no gradient needed
        else:
            with torch.enable_grad():
                leaves = {u: x[u].detach().requires_grad_(True) for u in self.unknown}
                out = self.inner({**x, **leaves}, t)
                error = (self.x0_known - out[k]).pow(2).sum()  # per-sample squared norms, summed over the batch
                if self.norm == "balanced":  # elements of the unknown modality per element of the known one
                    error = error * sum(x[u][0].numel() for u in self.unknown) / self.x0_known[0].numel()
                # an uncoupled model's known-modality prediction does not depend on the others: zero gradient
                grads = torch.autograd.grad(error, list(leaves.values()), allow_unused=True, materialize_grads=True)
            record("guidance_backward", x[k].shape[0])  # a backward pass through the network per sample
            out = {m: v.detach() for m, v in out.items()}
            for u, g in zip(self.unknown, grads):
                out[u] = out[u] - self.scale * self.coefficients(u, t, g)[0] * g
        out[k] = self.x0_known
        return out
