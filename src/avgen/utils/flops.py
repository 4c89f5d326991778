"""Floating-point operations of training steps, counted by torch's `FlopCounterMode` (matmuls, convolutions,
attention; elementwise work and the optimizer are not counted, as in the papers' FLOPs tables).

torch's formula registry covers the CUDA attention kernels but not the CPU one that
`scaled_dot_product_attention` dispatches to on the CPU, so attention would count 0 there; its formulas are
registered here with torch's own SDPA counts, so a step counts the same on either device.
"""

from __future__ import annotations

import torch
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode


def _register_cpu_attention() -> None:
    aten = torch.ops.aten
    forward = aten._scaled_dot_product_flash_attention_for_cpu
    backward = aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward in flop_counter.flop_registry:  # torch added them (or this ran already)
        return

    @flop_counter.register_flop_formula(forward)
    def _forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    @flop_counter.register_flop_formula(backward)
    def _backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_register_cpu_attention()


class FlopCounter(TorchDispatchMode):
    """Total FLOPs of the operations run inside it (`with FlopCounter() as c: ...; c.get_total_flops()`), by
    torch's per-operation formulas. Unlike torch's `FlopCounterMode` it tracks no module hierarchy: that
    tracking hooks every module's backward, which `torch.autograd.grad` on inputs (MMDisCo's double
    backward) refuses."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_counter.flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out

    def get_total_flops(self) -> int:
        return int(self.total)


def counter() -> FlopCounter:
    """A FLOP counter (`with counter() as c: ...; c.get_total_flops()`)."""
    return FlopCounter()
