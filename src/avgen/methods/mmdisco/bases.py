"""Frozen base models behind the shared denoiser interface (MMDisCo §3; docs/methods.md#mmdisco).

Bases are black boxes: only their outputs are used, they are frozen (eval mode, no parameter requires
grad) and called under `torch.no_grad()`, so nothing can ever backpropagate into them.

- `load_checkpoint_denoiser`: any avgen checkpoint (a single-modal dual U-Net with coupling `none`, or a
  joint CMMD model used as a black box), rebuilt from the resolved config the checkpoint carries.
- `IndependentBases`: two single-modal denoisers as one joint (factorised) denoiser: the "no joint" model.
- `build_bases`: the part the module receives, from `method.bases` (checkpoints, a joint checkpoint, or text
  pipelines).
"""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from torch import Tensor, nn

from avgen.diffusion.denoiser import Denoiser, NetworkDenoiser, freeze
from avgen.utils.checkpoints import load_checkpoint, load_network


def load_checkpoint_denoiser(path: str | Path) -> NetworkDenoiser:
    """The frozen denoiser of an avgen training checkpoint (EMA weights), without the original command line."""
    ckpt = load_checkpoint(path, "train the base experiment first")
    if "avgen_config" not in ckpt:
        raise ValueError(f"{path} carries no avgen_config: not an avgen training checkpoint")
    cfg = ckpt["avgen_config"]
    net = instantiate(cfg["model"])
    load_network(net, ckpt, path)
    schedule = instantiate(cfg["method"]["schedule"])
    if not hasattr(schedule, "abar"):
        raise ValueError(
            f"{path}: a {type(schedule).__name__} model; MMDisCo guides diffusion bases (eps on an "
            "abar schedule), not flow-matching ones"
        )
    prediction = get_class(cfg["method"]["_target_"]).prediction  # what the checkpoint's method trained for
    return freeze(NetworkDenoiser(net, {m: schedule for m in net.modalities}, prediction=prediction))


def build_bases(
    audio: str | None = None, video: str | None = None, joint: str | None = None, text: dict | None = None
) -> nn.Module:
    """MMDisCo's frozen bases behind one interface, from the config's `method.bases`: two single-modal
    checkpoints (`audio`, `video`), one joint checkpoint used as a black box (`joint`, e.g. a CMMD run; paper
    §4.2 uses MM-Diffusion so), or local text-to-audio / text-to-video pipelines (`text`: {audio, video,
    motion_adapter, dtype}; paper §4.3). A missing checkpoint is named with the command that trains it."""
    if text:
        from avgen.methods.mmdisco.text_bases import TextBases

        return TextBases(**text)
    needed = {"joint": joint} if joint else {"audio": audio, "video": video}
    absent = {m: p for m, p in needed.items() if not p or not Path(p).is_file()}
    if absent:
        lines = "; ".join(
            f"{m}: {p} (make train EXP={Path(p).parents[1].name})" if p else f"{m}: not set" for m, p in absent.items()
        )
        raise FileNotFoundError(f"MMDisCo needs its base checkpoints first: {lines}")
    if joint:
        base = load_checkpoint_denoiser(joint)
        if set(base.modalities) != {"audio", "video"}:
            raise ValueError(f"method.bases.joint={joint} generates {base.modalities}, not audio and video")
        return base
    return IndependentBases({m: load_checkpoint_denoiser(p) for m, p in needed.items()})


class IndependentBases(Denoiser):
    """{"audio": audio_base, "video": video_base}: each sees only its own modality."""

    def __init__(self, bases: dict[str, Denoiser]):
        super().__init__()
        self.bases = nn.ModuleDict({m: freeze(b) for m, b in bases.items()})
        self.schedules = nn.ModuleDict({m: b.schedules[m] for m, b in bases.items()})

    @torch.no_grad()
    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        return {m: base({m: x[m]}, t)[m] for m, base in self.bases.items()}
