"""MelGAN training losses (per-sample, shape (B,)): least-squares GAN (Mao et al. 2017) in place of MelGAN's
hinge, feature matching (MelGAN §2.3) and a log-mel L1 reconstruction term (as in HiFi-GAN / Parallel WaveGAN);
the module weighs them 1 : 2 : 10.
"""

from __future__ import annotations

from torch import Tensor


def per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(1)


def lsgan_discriminator_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """sum over scales of E[(D(x) - 1)^2] + E[D(G(s))^2]; the score is each scale's last output."""
    return sum(per_sample_mean((r[-1] - 1) ** 2) + per_sample_mean(f[-1] ** 2) for r, f in zip(real, fake))


def lsgan_generator_loss(fake: list[list[Tensor]]) -> Tensor:
    """sum over scales of E[(D(G(s)) - 1)^2]."""
    return sum(per_sample_mean((f[-1] - 1) ** 2) for f in fake)


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """sum over scales and layers (the score excluded) of the L1 distance of feature maps (MelGAN Eq. 3)."""
    return sum(per_sample_mean((rf.detach() - ff).abs()) for r, f in zip(real, fake) for rf, ff in zip(r[:-1], f[:-1]))


def mel_l1_loss(mel_fake: Tensor, mel_real: Tensor) -> Tensor:
    """Mean absolute difference of normalised log-mels, per sample."""
    return per_sample_mean((mel_fake - mel_real).abs())


__all__ = ["lsgan_discriminator_loss", "lsgan_generator_loss", "feature_matching_loss", "mel_l1_loss"]
