"""What every joint network checks of its `modalities` and `coupling` arguments (U-Net and transformer alike)."""

from __future__ import annotations

from collections.abc import Sequence

MODALITIES = ("audio", "video")


def check_modalities(modalities: Sequence[str], coupling: str, couplings: Sequence[str]) -> tuple[str, ...]:
    """The modalities as a tuple, after checking them and that the coupling fits them."""
    modalities = tuple(modalities)
    if not modalities or any(m not in MODALITIES for m in modalities):
        raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {modalities}")
    if coupling not in couplings:
        raise ValueError(f"coupling must be one of {tuple(couplings)}, got {coupling!r}")
    if coupling != "none" and len(modalities) < 2:
        raise ValueError(f"coupling {coupling!r} needs both modalities; a single-modal model uses 'none'")
    return modalities
