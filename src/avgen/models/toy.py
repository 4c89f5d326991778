"""The MMDisCo toy experiment's networks (paper §4.1, A.3 Table 5): small MLPs on 1-D / 2-D points."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avgen.models.unets.blocks import timestep_embedding


class AdaptiveMLP(nn.Module):
    """Linear -> LayerNorm -> timestep scale/shift -> SiLU per layer, then a linear head.

    `widths` are the hidden layers (base: 16-64-256-64-16; discriminator: 64-32-8).
    """

    def __init__(self, in_features: int, out_features: int, widths: Sequence[int], time_dim: int):
        super().__init__()
        self.time_dim = time_dim
        self.time = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU())
        dims = [in_features, *widths]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.LayerNorm(w, elementwise_affine=False) for w in widths)
        self.mods = nn.ModuleList(nn.Linear(time_dim, 2 * w) for w in widths)
        self.head = nn.Linear(widths[-1], out_features)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        # The timestep path (embedding MLP and per-layer modulations) dominates the cost of such small nets;
        # compute it once per distinct t (a sampler calls with one t for the whole batch).
        steps, inverse = torch.unique(t, return_inverse=True)
        emb = self.time(timestep_embedding(steps, self.time_dim))
        h = x
        for layer, norm, mod in zip(self.layers, self.norms, self.mods):
            scale, shift = mod(emb)[inverse].chunk(2, dim=-1)
            h = F.silu(norm(layer(h)) * (1 + scale) + shift)
        return self.head(h)


class ToyBase(AdaptiveMLP):
    """1-D eps-prediction base model: 5 layers 16-64-256-64-16, timestep dim 256."""

    def __init__(self, widths: Sequence[int] = (16, 64, 256, 64, 16), time_dim: int = 256):
        super().__init__(1, 1, widths, time_dim)


class ToyDiscriminator(nn.Module):
    """Logit d_phi(a_t, v_t, t) of a 2-D point (a, v): 3 layers 64-32-8, timestep dim 64."""

    def __init__(self, widths: Sequence[int] = (64, 32, 8), time_dim: int = 64):
        super().__init__()
        self.mlp = AdaptiveMLP(2, 1, widths, time_dim)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> Tensor:
        return self.mlp(torch.cat([x["audio"], x["video"]], dim=-1), t).squeeze(-1)  # (B, 1)+(B, 1) -> (B,)


class PerModality(nn.Module):
    """Independent single-modal networks as one joint network: {m: net_m(x_m, t)}."""

    def __init__(self, nets: dict[str, nn.Module]):
        super().__init__()
        self.nets = nn.ModuleDict(nets)

    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        return {m: net(x[m], t) for m, net in self.nets.items()}
