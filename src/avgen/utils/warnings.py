"""Warnings that carry no information for avgen's users, silenced once for every command.

Each was read and judged: the condition it warns about is intended here, or it concerns library internals.
"""

from __future__ import annotations

import logging
import warnings

UNINFORMATIVE = (
    # our runs are bounded by max_steps and log every N steps by design; short smoke runs have few batches
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    # torch's pytree API change inside Lightning
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # MMDisCo's frozen bases are deliberately in eval mode while the discriminator trains
    r"Found \d+ module\(s\) in eval mode at the start of training",
    # diffusers' note on DPM-Solver's first-order algorithm type, which the paper's settings use
    r"`algorithm_types dpmsolver and sde-dpmsolver` is deprecated",
    # avgen loads its own checkpoints with weights_only=True; Lightning's resume path warns regardless
    r".*`weights_only` was not set",
    # the methods' configure_model shards only under trainer.strategy=fsdp, where ShardedEMA replaces
    # Lightning's weight averaging (experiment.fsdp_callbacks); otherwise it does nothing
    r"You're using the WeightAveraging callback with a model that overrides the configure_model",
)


def quiet() -> None:
    for pattern in UNINFORMATIVE:
        warnings.filterwarnings("ignore", message=pattern)
    # Lightning's tip to install litlogger / tensorboard, printed on every run
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "Tip:" not in record.getMessage() and "litlogger" not in record.getMessage()
    )
    # resume reads avgen's own checkpoints (written by this code); its loaders use weights_only=True
    logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector").addFilter(
        lambda record: "weights_only" not in record.getMessage()
    )
    # diffusers says `accelerate` is missing once per model it loads (8 times for the out-of-domain bases):
    # once is enough (filters act where a record is made: on the two loggers that make this one)
    for name in ("diffusers.models.modeling_utils", "diffusers.pipelines.pipeline_utils"):
        logging.getLogger(name).addFilter(_ACCELERATE_ONCE)  # the same filter again is not added twice


class _Once(logging.Filter):
    """Lets the first record that contains `text` through and drops the rest."""

    def __init__(self, text: str):
        super().__init__()
        self.text, self.seen = text, False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.text not in record.getMessage():
            return True
        seen, self.seen = self.seen, True
        return not seen


_ACCELERATE_ONCE = _Once("`accelerate` was not found")
