"""FSDP2 for avgen's networks (`trainer=fsdp`; docs/performance.md#fsdp).

Lightning's `ModelParallelStrategy` sets up the device mesh and the distributed checkpoints; the method's
`configure_model` calls `shard_network`: each block of the network (`blocks` of the dual-stream transformer;
every child module otherwise) becomes one `fully_shard` unit, then the network itself. A GPU holds 1/N of
every parameter, gradient and optimizer state, gathers one unit's parameters at a time in `param_dtype`
(bf16) for compute and reduces gradients in fp32. The frozen parts (a method's schedules) stay replicated.
"""

from __future__ import annotations

import torch
from torch import nn

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def shard_units(net: nn.Module) -> list[nn.Module]:
    """The modules that become FSDP units: the entries of the layer lists (the transformer's `blocks`, the
    U-Net branches' `layers`), found through containers; a module without one is a unit itself. Units are
    modules whose own forward runs (a U-Net calls its layers, not its branches), so each gathers in time."""

    def units(module: nn.Module) -> list[nn.Module]:
        if isinstance(module, (nn.ModuleDict, nn.ModuleList)):  # containers have no forward of their own
            return [u for child in module.children() for u in units(child)]
        lists = [c for c in module.children() if isinstance(c, nn.ModuleList) and len(c) > 1]
        if lists:
            return [u for layer_list in lists for u in units(layer_list)]
        return [module] if any(p.requires_grad for p in module.parameters()) else []

    return [u for child in net.children() for u in units(child)]


def shard_network(net: nn.Module, mesh, param_dtype: str = "bf16") -> nn.Module:
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if param_dtype not in DTYPES:
        raise ValueError(f"trainer.fsdp_param_dtype must be one of {', '.join(DTYPES)}, got {param_dtype!r}")
    policy = MixedPrecisionPolicy(param_dtype=DTYPES[param_dtype], reduce_dtype=torch.float32)
    for unit in shard_units(net):
        fully_shard(unit, mesh=mesh, mp_policy=policy)
    fully_shard(net, mesh=mesh, mp_policy=policy)
    return net


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in module.parameters())


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's whole state dict on every rank, on the CPU (a collective under FSDP)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    # cpu_offload would leave the other ranks empty-handed: gather on the device, then copy
    state = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True))
    return {k: v.detach().cpu() for k, v in state.items()}
