"""The one denoiser interface every method and sampler shares (k-diffusion style).

A denoiser maps a joint noisy state and a shared timestep to x0 predictions:

    denoiser(x: {"audio": a_t, "video": v_t}, t: (B,)) -> {"audio": a0_hat, "video": v0_hat}

t is discrete (long) for diffusion schedules and diffusers' float flow timestep for flow matching. It also
exposes the per-modality `schedules` (their coefficients x_t = alpha_t x0 + sigma_t eps), so samplers and
guidance convert between eps, v, velocity and x0 without knowing how the network was trained. Adapters wrap
networks trained another way (v-prediction here;
eps-prediction bases for MMDisCo) into this interface. Guidance wraps a denoiser; samplers never change.
"""

from __future__ import annotations

from torch import Tensor, nn

from avgen.diffusion.conversions import PREDICTIONS


class Denoiser(nn.Module):
    """Base class: `schedules[m]` is modality m's noise schedule; `forward` returns x0 predictions."""

    schedules: nn.ModuleDict

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.schedules.keys())

    def abar(self, m: str, t: Tensor, ref: Tensor) -> Tensor:
        return self.schedules[m].abar(t, ref.ndim).to(ref.dtype)

    def coefficients(self, m: str, t: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) of modality m, broadcast to `ref`: x_t = alpha_t x0 + sigma_t eps."""
        alpha, sigma = self.schedules[m].coefficients(t, ref.ndim)
        return alpha.to(ref.dtype), sigma.to(ref.dtype)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class NetworkDenoiser(Denoiser):
    """Adapter for a network whose outputs are `prediction` for every modality: a key of
    `conversions.PREDICTIONS` ("v", "eps", "x0", or the flow velocity "velocity" on a flow schedule)."""

    def __init__(self, net: nn.Module, schedules: dict[str, nn.Module], prediction: str = "v"):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")
        self.net, self.prediction = net, prediction
        self.schedules = nn.ModuleDict(schedules)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        out, to_x0 = self.net(x, t), PREDICTIONS[self.prediction]
        return {m: to_x0(x[m], out[m], *self.coefficients(m, t, x[m])) for m in self.modalities}


def freeze(module: nn.Module) -> nn.Module:
    """A black-box network: eval mode, no parameter requires grad (frozen bases, fixed teachers)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
