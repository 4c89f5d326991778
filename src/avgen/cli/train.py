"""`avgen train experiment=<name> [key=value ...]` (`make train EXP=<name> ARGS=...`).

Builds every part from the composed config, trains with Lightning, then samples and scores the result:
outputs/<name>/{config.yaml, checkpoints/last.ckpt, samples/*.mp4, metrics.json, logs/}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avgen.cli.config import load_config
from avgen.utils.io import write_json, write_text
from avgen.utils.threads import set_torch_threads


class ResolvedConfigInCheckpoint(L.Callback):
    """Checkpoints carry the resolved config, so they reload without the original command line."""

    def __init__(self, cfg: DictConfig):
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["avgen_config"] = self.config


def split_experiment(overrides: list[str]) -> tuple[str | None, list[str]]:
    experiment = None
    rest = []
    for o in overrides:
        if o.startswith("experiment="):
            experiment = o.split("=", 1)[1] or None
        else:
            rest.append(o)
    return experiment, rest


def build(cfg: DictConfig) -> tuple[Any, L.LightningModule, list[L.Callback]]:
    """The data module, the LightningModule and the callbacks of a composed train config."""
    dm = instantiate(cfg.data)
    net = instantiate(cfg.model)
    module = instantiate(cfg.method, net=net)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [ResolvedConfigInCheckpoint(cfg)]
    return dm, module, callbacks


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    cfg = load_config("train", overrides, experiment=experiment)
    threads = set_torch_threads(cfg.threads or None)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    dm, module, callbacks = build(cfg)
    dm.setup("fit")  # a missing store fails here, naming the path and the command that makes it
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate(cfg.logger),
                          default_root_dir=str(out_dir))
    last = out_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if cfg.resume and last.is_file() else None
    t = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - t
    if not trainer.is_global_zero:
        return 0
    # EMAWeightAveraging has copied the averaged weights into the module at the end of fit.
    from avgen.cli.evaluate import evaluate_synthetic

    joint = set(getattr(module, "modalities", ())) == {"audio", "video"}
    synthetic = dm.store.metadata["dataset"] == "synthetic"
    metrics = evaluate_synthetic(module, dm, out_dir, cfg) if joint and synthetic else {}
    metrics.update({"experiment": experiment or cfg.name, "method": cfg.method._target_.rsplit(".", 1)[0],
                    "steps": trainer.global_step, "train_seconds": train_seconds, "torch_threads": threads,
                    "parameters": sum(p.numel() for p in module.net.parameters())})
    write_json(out_dir / "metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    return 0



