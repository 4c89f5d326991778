"""A fine-tune that continues its parent run as one uninterrupted run would (`method.continue_schedule`).

CMMD's paper runs train nCMMD for 400K steps and switch the contrastive term on until 700K: one run. A
fine-tune that copies the weights only restarts the learning-rate schedule at step 0 with a fresh optimizer,
so CMMD - nCMMD would measure extra training at a higher rate, not the contrastive term. A continuation
takes from the parent checkpoint what the uninterrupted run would still have:
- its step count, so the learning-rate schedule goes on at the parent's global step;
- its training weights (Lightning's EMA callback keeps them as `current_model_state`; the EMA weights in
  `state_dict` are what the method's constructor loads, so the EMA callback's average starts from them);
- its optimizer state (Adam's moments), when the parent's optimizer has the same parameter groups and shapes;
  otherwise the fine-tune starts fresh moments and says why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class Continuation:
    step: int
    path: str
    training_weights: dict[str, torch.Tensor] | None = None  # the parent's `net.` training (non-EMA) weights
    optimizer_state: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], path: str) -> Continuation:
        if "global_step" not in ckpt:
            raise ValueError(f"{path}: no global_step; method.continue_schedule needs a Lightning training checkpoint")
        current = ckpt.get("current_model_state")
        weights = {k[len("net.") :]: v for k, v in current.items() if k.startswith("net.")} if current else None
        states = ckpt.get("optimizer_states") or []
        return cls(int(ckpt["global_step"]), str(path), weights, states[0] if len(states) == 1 else None)

    def apply(self, net: nn.Module, optimizer: torch.optim.Optimizer) -> str | None:
        """Load the parent's training weights into `net` and its optimizer state into `optimizer` (after the
        optimizer exists, before the first step). Returns why the optimizer state was not restored, if not."""
        if self.training_weights is not None:
            net.load_state_dict(self.training_weights)
        reason = self.mismatch(optimizer)
        if reason is None:
            own = optimizer.state_dict()
            # the parent's moments, this run's hyperparameters (its lr, betas, ...): the schedule sets the lr
            optimizer.load_state_dict({"state": self.optimizer_state["state"], "param_groups": own["param_groups"]})
        else:
            warnings.warn(f"{self.path}: optimizer state not continued ({reason}); fresh moments", stacklevel=2)
        return reason

    def mismatch(self, optimizer: torch.optim.Optimizer) -> str | None:
        """Why the parent's optimizer state cannot be loaded into `optimizer` (None: it can)."""
        parent = self.optimizer_state
        if parent is None:
            return "the parent checkpoint holds no single optimizer state"
        groups, own_groups = parent["param_groups"], optimizer.param_groups
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in own_groups]:
            return "its parameter groups differ from this run's"
        if [set(g) - {"params"} for g in groups] != [set(g) - {"params"} for g in own_groups]:
            return (
                "another optimizer (its settings differ: "
                + ", ".join(sorted(set(groups[0]) ^ set(own_groups[0])))
                + ")"
            )
        params = [p for g in own_groups for p in g["params"]]
        indices = [i for g in groups for i in g["params"]]
        for index, p in zip(indices, params):
            for key, value in parent["state"].get(index, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != p.shape:
                    return f"state {key} of parameter {index} has shape {tuple(value.shape)}, not {tuple(p.shape)}"
        return None
