"""Does the discriminator see alignment, or only realism? Diagnostics on real test pairs.

With weak single-modal bases, real and fake pairs differ mostly in each modality's quality, and a
discriminator can separate them without looking at alignment; its guidance then cannot align anything. On
real pairs noised with one noise per pair at several timesteps, this measures:
- the mean logit d of aligned pairs, of deranged pairs (each video with another clip's audio) and of
  time-shifted pairs (the audio rolled by `shift_frames` of its frames): a discriminator that sees alignment
  scores aligned pairs above the other two;
- the relative change of the video guidance grad_v d when the audio is swapped,
  mean ||g(v, a) - g(v, a')|| / ||g(v, a)||: 0 means the video guidance ignores the audio (a separable head).
"""

from __future__ import annotations

import torch
from torch import Tensor

from avgen.diffusion.conversions import noisy
from avgen.methods.mmdisco.losses import logit_gradients


@torch.no_grad()
def alignment_diagnostics(
    discriminator,
    bases,
    real: dict[str, Tensor],
    timesteps: tuple[int, ...] = (100, 300, 500, 700, 900),
    shift_frames: int = 4,
    seed: int = 0,
    audio_time_axis: int = 2,
) -> dict[str, dict[str, float]]:
    """{f"t{t}": {logit_aligned, logit_deranged, logit_shifted, grad_v_change}} for each timestep."""
    g = torch.Generator().manual_seed(seed)
    b = real["audio"].shape[0]
    perm = (torch.arange(b) + 1) % b  # a derangement: every video gets its neighbour's audio
    out = {}
    for step in timesteps:
        t = torch.full((b,), step, dtype=torch.long, device=real["audio"].device)
        noise = {m: torch.randn(x.shape, generator=g).to(x) for m, x in real.items()}
        x_t = {m: noisy(x, noise[m], bases.abar(m, t, x)) for m, x in real.items()}
        variants = {
            "aligned": x_t,
            "deranged": {**x_t, "audio": x_t["audio"][perm]},
            "shifted": {**x_t, "audio": x_t["audio"].roll(shift_frames, dims=audio_time_axis)},
        }
        logits, grads = {}, {}
        for name, x in variants.items():
            d, grad = logit_gradients(discriminator, x, t, create_graph=False)
            logits[name], grads[name] = d.float(), grad["video"].float().flatten(1)
        change = (grads["aligned"] - grads["deranged"]).norm(dim=1) / grads["aligned"].norm(dim=1).clamp_min(1e-12)
        out[f"t{step}"] = {
            **{f"logit_{k}": float(v.mean()) for k, v in logits.items()},
            "grad_v_change": float(change.mean()),
        }
    return out
