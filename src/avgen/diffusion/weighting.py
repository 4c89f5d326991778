"""How the squared errors of two modalities add up into one per-sample loss (docs/methods.md#loss-weighting).

CMMD Eq. 2 and the flow-matching loss are one squared norm over both modalities: `joint` is that norm divided
by the total element count (a constant, so Eq. 2 up to scale), which lets the larger tensor (video) carry
D_v / (D_a + D_v) of the loss. `per_modality` averages each modality over its own elements and sums the
means, so audio and video weigh alike whatever their sizes (audio weighs D_v / D_a more than in Eq. 2).
"""

from __future__ import annotations

from torch import Tensor

WEIGHTINGS = ("joint", "per_modality")


def check_weighting(weighting: str) -> str:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"method.modality_weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    return weighting


# CMMD Eq. 2: ||target_a - pred_a||^2 + ||target_v - pred_v||^2, per sample
def modality_squared_error(target: dict[str, Tensor], prediction: dict[str, Tensor], weighting: str) -> Tensor:
    """Per-sample squared error over the modalities of `target`, (B,): `joint` = sum over every element of
    every modality / total element count; `per_modality` = sum over modalities of each one's element mean."""
    errors = {m: (target[m] - prediction[m]).pow(2).flatten(1) for m in target}  # (B, D_m) each
    if check_weighting(weighting) == "joint":
        return sum(e.sum(1) for e in errors.values()) / sum(e.shape[1] for e in errors.values())
    return sum(e.mean(1) for e in errors.values())
