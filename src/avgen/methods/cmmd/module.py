"""CMMD LightningModule: wires a joint network, a schedule, the losses and the negatives (paper §2, App. B.2).

It receives built parts (network, schedule, negative sampler, optimizer partial) and only wires them; the
math lives in `losses.py`, `negatives.py`, `avgen.diffusion` and `avgen.sampling`. EMA weights come from
Lightning's `EMAWeightAveraging` callback (configs/callbacks/), which also makes checkpoints hold them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from avgen.data.clips import clips
from avgen.diffusion.schedule import NoiseSchedule
from avgen.diffusion.weighting import check_weighting
from avgen.methods.base import DenoisingMethod
from avgen.methods.cmmd.losses import contrastive_loss, joint_diffusion_loss
from avgen.methods.cmmd.negatives import NegativeSampler
from avgen.methods.continuation import Continuation
from avgen.utils.checkpoints import load_checkpoint
from avgen.utils.checkpoints import load_network as load_network_weights


def step_decay(step: int, every: int, factor: float, floor_ratio: float, offset: int = 0) -> float:
    """CMMD App. B.2: the learning rate is multiplied by `factor` every `every` steps, down to a floor;
    `offset`: steps taken before this run (a continued parent's), so the schedule goes on where it stopped."""
    return max(factor ** ((step + offset) // every), floor_ratio)


def linear_cooldown(step: int, total: int, steps: int) -> float:
    """The last `steps` of `total`: the learning rate falls linearly to 0 (the decay phase of a
    warmup-stable-decay schedule). 0 steps: off."""
    if steps <= 0 or total <= 0:
        return 1.0
    return min(1.0, max(total - step, 0) / steps)


def lr_factor(
    step: int, every: int, factor: float, floor_ratio: float, offset: int, total: int, cooldown: int
) -> float:
    return step_decay(step, every, factor, floor_ratio, offset) * linear_cooldown(step, total, cooldown)


class CMMDModule(DenoisingMethod):
    """CMMD (docs/methods.md#cmmd); with eta = 0 nCMMD, with coupling none the independent / single-modal models."""

    name = "cmmd"
    conditional = True  # v2a / a2v by reconstruction guidance (CMMD Eq. 3)
    prediction = "v"  # the network predicts the velocity v = sqrt(abar) eps - sigma x0 (CMMD §2)
    default_sampler = "ddim"

    @staticmethod
    def variant(cfg: DictConfig) -> str:
        parts = [f"coupling={cfg.model.get('coupling')}", f"eta={cfg.method.get('eta')}"]
        two = len(cfg.model.get("modalities", ["audio", "video"])) == 2
        noise = noise_mode(cfg.method.get("negative_noise", "shared"))  # runs before the modes were named: shared
        if cfg.method.get("eta") and noise != "algorithm1":  # the ablations
            parts.append(f"negative_noise={noise}")
        if two and cfg.method.get("modality_weighting", "per_modality") != "joint":  # before the option: per modality
            parts.append("weighting=per_modality")
        if cfg.method.get("init_from") and cfg.method.get("continue_schedule"):
            parts.append("continued")
        if "modalities" in cfg.model and len(cfg.model.modalities) == 1:
            parts.insert(0, f"{cfg.model.modalities[0]} only")
        return ", ".join(parts)

    @staticmethod
    def start_checkpoints(method_cfg: DictConfig) -> list[str]:
        return [method_cfg.init_from] if method_cfg.get("init_from") else []

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule,
        optimizer: partial,
        negatives: NegativeSampler,
        eta: float = 5e-5,
        max_negative_loss: float | None = None,
        negatives_per_step: int | None = None,
        contrastive_from_step: int = 0,
        lr_decay_every: int = 80_000,
        lr_decay_factor: float = 0.8,
        lr_floor: float = 2e-5,
        lr_cooldown_steps: int = 0,
        init_from: str | None = None,
        negative_noise: str = "algorithm1",
        modality_weighting: str = "joint",
        continue_schedule: bool = False,
    ):
        super().__init__(net, schedule, optimizer)
        self.negatives = negatives
        self.eta, self.max_negative_loss = float(eta), max_negative_loss
        self.negatives_per_step = negatives_per_step
        self.contrastive_from_step = contrastive_from_step
        self.negative_noise = noise_mode(negative_noise)
        self.modality_weighting = check_weighting(modality_weighting)
        self.lr_decay = (lr_decay_every, lr_decay_factor, lr_floor)
        self.lr_cooldown_steps = int(lr_cooldown_steps)
        if eta and len(self.modalities) < 2:
            raise ValueError("the contrastive loss needs both modalities; single-modal bases train with eta=0")
        self.continuation: Continuation | None = None
        if init_from:
            self.load_network(init_from, continue_schedule)

    def load_network(self, path: str, continue_schedule: bool = False) -> None:
        """Fine-tuning start (e.g. CMMD from nCMMD): network weights from an avgen checkpoint (its EMA weights,
        which the EMA callback copies at setup). `continue_schedule`: the run continues its parent instead, as
        one uninterrupted run would (training/continuation.py)."""
        ckpt = load_checkpoint(
            path, "train the run this one fine-tunes from first (for cmmd_<dataset>: `make train EXP=ncmmd_<dataset>`)"
        )
        load_network_weights(self.net, ckpt, path)
        if continue_schedule:
            self.continuation = Continuation.from_checkpoint(ckpt, path)

    def on_fit_start(self) -> None:
        if self.continuation is not None and self.trainer.ckpt_path is None:  # not when resuming this run itself
            self.continuation.apply(self.net, self.optimizers(use_pl_optimizer=False))

    # --------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        x0 = clips(batch, self.modalities)
        t, eps = self.training_draws(batch, x0)
        if self.eta == 0.0 or self.global_step < self.contrastive_from_step:  # nCMMD: the joint loss alone
            loss = self.denoising_loss(x0, t, eps).mean()
            self.log_dict({"train/loss": loss, "train/loss_positive": loss}, prog_bar=True, batch_size=t.shape[0])
            return loss
        neg_audio, _ = self.negatives(batch, "audio")
        neg_video, _ = self.negatives(batch, "video")
        # a random subset of the negatives per step (docs/methods.md#cmmd: memory and time)
        b = x0["audio"].shape[0]
        k = min(self.negatives_per_step or b, b)
        sub = torch.randperm(b, device=self.device)[:k]
        # positives, (a', v) and (a, v') in one forward pass
        pairs = {
            "audio": torch.cat([x0["audio"], neg_audio[sub], x0["audio"][sub]]),
            "video": torch.cat([x0["video"], x0["video"][sub], neg_video[sub]]),
        }
        noise = negative_pair_noise(x0, sub, self.negative_noise, eps)
        per_sample = self.denoising_loss(pairs, torch.cat([t, t[sub], t[sub]]), noise)
        positive, negative_audio, negative_video = per_sample.split([b, k, k])
        loss = contrastive_loss(
            positive.mean(), negative_audio.mean(), negative_video.mean(), self.eta, self.max_negative_loss
        )
        self.log_dict(
            {
                "train/loss": loss,
                "train/loss_positive": positive.mean(),
                "train/loss_negative_audio": negative_audio.mean(),
                "train/loss_negative_video": negative_video.mean(),
            },
            prog_bar=True,
            batch_size=b,
        )
        return loss

    def denoising_loss(self, x0: dict[str, Tensor], t: Tensor, noise: dict[str, Tensor]) -> Tensor:
        return joint_diffusion_loss(self.net, self.schedule, x0, t, noise, self.modality_weighting)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters())
        every, factor, floor = self.lr_decay
        base_lr = optimizer.param_groups[0]["lr"]
        offset = self.continuation.step if self.continuation is not None else 0  # the parent's steps
        total = self.trainer.max_steps if self._trainer is not None else -1  # this run's steps (-1: unbounded)
        if self.lr_cooldown_steps and total <= 0:
            raise ValueError("method.lr_cooldown_steps needs trainer.max_steps (the cooldown ends the run)")
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            partial(
                lr_factor,
                every=every,
                factor=factor,
                floor_ratio=floor / base_lr,
                offset=offset,
                total=total,
                cooldown=self.lr_cooldown_steps,
            ),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _noise_like(x: dict[str, Tensor]) -> dict[str, Tensor]:
    return {m: torch.randn_like(v) for m, v in x.items()}


NOISE_MODES = ("algorithm1", "shared_both", "independent")


def noise_mode(mode: str) -> str:
    """A negative-noise mode; `shared`, the name runs trained before the modes were named recorded, is what
    is now `shared_both`."""
    mode = {"shared": "shared_both"}.get(mode, mode)
    if mode not in NOISE_MODES:
        raise ValueError(f"method.negative_noise must be one of {', '.join(NOISE_MODES)}, got {mode!r}")
    return mode


# CMMD Algorithm 1: draw eps_a, eps_a_neg, eps_v, eps_v_neg; each negative keeps the positive's t
def negative_pair_noise(
    x0: dict[str, Tensor], sub: Tensor, mode: str = "algorithm1", eps: dict[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Noise for [positives, (a', v) on `sub`, (a, v') on `sub`], per modality (B + 2k, ...).

    - `algorithm1` (CMMD Algorithm 1): the corrupted modality of each negative is noised with its own fresh
      eps_neg; the unchanged one gets the positive's noise, so it enters as the positive's noisy input (a_n or
      v_n) and regresses the positive's target.
    - `shared_both`: both modalities reuse the positive's noise (the corrupted one too).
    - `independent`: both modalities of both negatives get fresh noise.
    All three have the same expected objective; they differ in the variance of L - eta L_neg. `eps`: the
    positives' noise (drawn here if not given).
    """
    eps = _noise_like(x0) if eps is None else eps
    mode = noise_mode(mode)
    out = {}
    for m, e in eps.items():
        own = e[sub]
        if mode == "shared_both":
            out[m] = torch.cat([e, own, own])
        elif mode == "independent":
            out[m] = torch.cat([e, torch.randn_like(own), torch.randn_like(own)])
        else:  # audio is corrupted in (a', v), video in (a, v')
            fresh = torch.randn_like(own)
            out[m] = torch.cat([e, fresh, own] if m == "audio" else [e, own, fresh])
    return out
