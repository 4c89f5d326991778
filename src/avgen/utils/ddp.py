"""DDP wrapped on the stream that trains (docs/performance.md#ddp-streams).

Lightning 2.6 wraps the model in `DistributedDataParallel` inside a fresh side CUDA stream (PyTorch's recipe
for capturing a whole DDP iteration in one CUDA graph). DDP keeps a reference to every parameter's
AccumulateGrad node, so those nodes belong to the side stream, while every forward and backward runs on the
default stream: torch then warns on each backward that "the AccumulateGrad node's stream does not match the
stream of the node that produced the incoming gradient" and synchronises the two streams. avgen never
captures a whole DDP iteration (`compile_mode=reduce-overhead` graphs the compiled network's forward and
backward, inside the iteration), so it wraps DDP on the current stream, as plain PyTorch DDP does.
"""

from __future__ import annotations

from lightning.pytorch.strategies import DDPStrategy
from torch.nn import Module
from torch.nn.parallel import DistributedDataParallel


class CurrentStreamDDP(DDPStrategy):
    """Lightning's DDP strategy (`strategy: ddp`), with DDP initialised on the stream that trains."""

    def _setup_model(self, model: Module) -> DistributedDataParallel:
        return DistributedDataParallel(module=model, device_ids=self.determine_ddp_device_ids(), **self._ddp_kwargs)
