"""The one denoiser interface every method and sampler shares (k-diffusion style).

A denoiser maps a joint noisy state and a shared timestep to x0 predictions:

    denoiser(x: {"audio": a_t, "video": v_t}, t: (B,)) -> {"audio": a0_hat, "video": v0_hat}

t is discrete (long) for diffusion schedules and diffusers' float flow timestep for flow matching. It also
exposes the per-modality `schedules` (their coefficients x_t = alpha_t x0 + sigma_t eps), so samplers and
guidance convert between eps, v, velocity and x0 without knowing how the network was trained. Adapters wrap networks trained another way (v-prediction here;
eps-prediction bases for MMDisCo) into this interface. Guidance wraps a denoiser; samplers never change.
"""

from __future__ import annotations

from torch import Tensor, nn

from avgen.diffusion.conversions import x0_from_eps, x0_from_v, x0_from_velocity


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
    """Adapter for a network predicting v (`prediction="v"`), eps (`"eps"`) or, on a flow schedule, the flow
    velocity (`"velocity"`) for every modality."""

    def __init__(self, net: nn.Module, schedules: dict[str, nn.Module], prediction: str = "v"):
        super().__init__()
        if prediction not in ("v", "eps", "velocity"):
            raise ValueError(f"prediction must be 'v', 'eps' or 'velocity', got {prediction!r}")
        self.net, self.prediction = net, prediction
        self.schedules = nn.ModuleDict(schedules)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        out = self.net(x, t)
        if self.prediction == "velocity":
            return {m: x0_from_velocity(x[m], out[m], self.coefficients(m, t, x[m])[1]) for m in self.modalities}
        convert = x0_from_v if self.prediction == "v" else x0_from_eps
        return {m: convert(x[m], out[m], self.abar(m, t, x[m])) for m in self.modalities}
