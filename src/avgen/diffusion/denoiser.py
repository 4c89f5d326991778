"""The one denoiser interface every method and sampler shares (k-diffusion style).

A denoiser maps a joint noisy state and a shared discrete timestep to x0 predictions:

    denoiser(x: {"audio": a_t, "video": v_t}, t: (B,) long) -> {"audio": a0_hat, "video": v0_hat}

It also exposes the per-modality `schedules` (abar_t), so samplers and guidance convert between eps, v and x0
without knowing how the network was trained. Adapters wrap networks trained another way (v-prediction here;
eps-prediction bases for MMDisCo) into this interface. Guidance wraps a denoiser; samplers never change.
"""

from __future__ import annotations

from torch import Tensor, nn

from avgen.diffusion.conversions import x0_from_eps, x0_from_v
from avgen.diffusion.schedule import NoiseSchedule


class Denoiser(nn.Module):
    """Base class: `schedules[m]` is modality m's noise schedule; `forward` returns x0 predictions."""

    schedules: nn.ModuleDict

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.schedules.keys())

    def abar(self, m: str, t: Tensor, ref: Tensor) -> Tensor:
        return self.schedules[m].abar(t, ref.ndim).to(ref.dtype)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class NetworkDenoiser(Denoiser):
    """Adapter for a network predicting v (`prediction="v"`) or eps (`prediction="eps"`) for every modality."""

    def __init__(self, net: nn.Module, schedules: dict[str, NoiseSchedule], prediction: str = "v"):
        super().__init__()
        if prediction not in ("v", "eps"):
            raise ValueError(f"prediction must be 'v' or 'eps', got {prediction!r}")
        self.net, self.prediction = net, prediction
        self.schedules = nn.ModuleDict(schedules)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        out = self.net(x, t)
        convert = x0_from_v if self.prediction == "v" else x0_from_eps
        return {m: convert(x[m], out[m], self.abar(m, t, x[m])) for m in self.modalities}
