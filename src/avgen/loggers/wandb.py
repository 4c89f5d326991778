"""Lightning's WandbLogger without the deprecated `anonymous` setting it always passes to `wandb.init`
(wandb warns on every run that the setting has no effect)."""

from __future__ import annotations

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)
