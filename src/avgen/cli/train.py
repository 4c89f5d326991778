"""`avgen train experiment=<name> [key=value ...]` (`make train EXP=<name> ARGS=...`).

Builds every part from the composed config, trains with Lightning, then samples and scores the result:
outputs/<name>/{config.yaml, checkpoints/last.ckpt, samples/*.mp4, metrics.json, logs/}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avgen.cli.compare import RUN_INFO
from avgen.cli.config import load_config
from avgen.callbacks.reliability import (AtomicCheckpointIO, CheckpointAtEnd, ResolvedConfigInCheckpoint,
                                         TrainingClock)
from avgen.utils.io import check_writable, redact, write_json, write_text
from avgen.utils.threads import free_cores, set_torch_threads


def cpu_processes(trainer_cfg: DictConfig) -> int:
    """Training processes sharing this machine's cores (CPU DDP runs one per device)."""
    devices = trainer_cfg.get("devices", 1)
    return devices if trainer_cfg.get("accelerator") == "cpu" and isinstance(devices, int) and devices > 1 else 1


def variant(cfg: DictConfig) -> str:
    """What tells runs of one method apart in a comparison (coupling and eta; discriminator head)."""
    if "head" in cfg.model:
        return f"head={cfg.model.head}"
    parts = [f"coupling={cfg.model.get('coupling')}", f"eta={cfg.method.get('eta')}"]
    if "modalities" in cfg.model and len(cfg.model.modalities) == 1:
        parts.insert(0, f"{cfg.model.modalities[0]} only")
    return ", ".join(parts)


def pop(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """The value of a command-level `key=value` (not a config key; empty = None) and the other overrides."""
    value = next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")), None)
    return value or None, [o for o in overrides if not o.startswith(f"{key}=")]


def split_experiment(overrides: list[str]) -> tuple[str | None, list[str]]:
    return pop(overrides, "experiment")


def method_name(cfg: DictConfig) -> str:
    """`avgen.methods.<name>.module.X` -> <name>."""
    return cfg.method._target_.split(".")[2]


def build(cfg: DictConfig) -> tuple[Any, L.LightningModule, list[L.Callback]]:
    """The data module, the LightningModule and the callbacks of a composed train config."""
    dm = instantiate(cfg.data)
    net = instantiate(cfg.model)
    module = instantiate(cfg.method, net=net)
    # an experiment drops a default callback by setting it to null (e.g. no EMA for the GAN vocoder)
    callbacks = [CheckpointAtEnd()] + [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    callbacks += [ResolvedConfigInCheckpoint(cfg), TrainingClock()]
    return dm, module, callbacks


def dataset_name(dm: Any) -> str:
    """The dataset a data module draws from (the store's metadata; raw-media modules name it themselves)."""
    return getattr(dm, "dataset_name", None) or dm.store.metadata["dataset"]


def make_logger(cfg: DictConfig, dataset: str | None = None, **overrides: Any):
    """The configured logger; W&B runs of one dataset share a group, the method is the job type, so methods
    sit side by side in the W&B UI."""
    kwargs: dict[str, Any] = {}
    if cfg.logger._target_.endswith("WandbLogger") and dataset is not None:
        method = method_name(cfg)
        kwargs = {"group": cfg.logger.group or dataset, "job_type": cfg.logger.job_type or method,
                  "tags": [dataset, method, variant(cfg)]}
    return instantiate(cfg.logger, **kwargs, **overrides)


def log_run_metrics(logger, metrics: dict[str, Any], step: int | None) -> None:
    """metrics.json's numbers under the keys every method shares (val/temporal_alignment, val/fvd, ...; run
    descriptions under run/), then the logger is flushed and a W&B run finished (summary and files written)."""
    numbers = {f"{'run' if k in RUN_INFO else 'val'}/{k}": float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    logger.log_metrics(numbers, step=step)
    logger.save()
    if type(logger).__name__ == "WandbLogger":
        logger.experiment.finish()


def make_trainer(cfg: DictConfig, callbacks: list[L.Callback], dataset: str | None = None) -> L.Trainer:
    """The configured Trainer, writing checkpoints atomically."""
    return instantiate(cfg.trainer, callbacks=callbacks, logger=make_logger(cfg, dataset),
                       default_root_dir=str(cfg.output_dir), plugins=[AtomicCheckpointIO()])


def score(cfg: DictConfig, module: L.LightningModule, dm: Any, out_dir: Path) -> dict[str, Any]:
    """Samples and metrics of a trained module (joint models: single-modal bases are scored through the
    MMDisCo runs that join them), with what identifies the run in a comparison."""
    from avgen.cli.evaluate import evaluate

    dataset = dataset_name(dm)
    joint = set(getattr(module, "modalities", ())) == {"audio", "video"}
    metrics = evaluate(module, dm, out_dir, cfg) if joint and cfg.evaluate.num_samples > 0 else {}
    if hasattr(module, "score"):  # methods with their own quality figures (the vocoder)
        metrics.update(module.score(dm))
    metrics.update({"dataset": dataset, "method": method_name(cfg), "variant": variant(cfg),
                    "parameters": sum(p.numel() for p in module.net.parameters())})
    return metrics


def run(overrides: list[str]) -> int:
    experiment, overrides = split_experiment(overrides)
    cfg = load_config("train", overrides, experiment=experiment)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:  # `???` in an experiment: e.g. the local pipeline directories of the out-of-domain bases
        raise ValueError(f"{experiment or cfg.name} needs {', '.join(missing)}: set them as key=value")
    threads = set_torch_threads(cfg.threads or max(1, free_cores() // cpu_processes(cfg.trainer)))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out_dir = Path(cfg.output_dir)
    check_writable(out_dir, "output_dir")  # before any work
    resolved = redact(OmegaConf.to_container(cfg, resolve=True))
    write_text(out_dir / "config.yaml", OmegaConf.to_yaml(resolved))
    dm, module, callbacks = build(cfg)
    dm.setup("fit")  # a missing store fails here, naming the path and the command that makes it
    dataset = dataset_name(dm)
    if cfg.compile:
        module.net.compile()  # in place: checkpoint keys stay those of the plain network
    trainer = make_trainer(cfg, callbacks, dataset)
    if trainer.logger is not None:
        trainer.logger.log_hyperparams(resolved)
    last = out_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if cfg.resume and last.is_file() else None
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    train_seconds = next(c for c in callbacks if isinstance(c, TrainingClock)).seconds  # resumed runs included
    if not trainer.is_global_zero:
        return 0
    # EMAWeightAveraging has copied the averaged weights into the module at the end of fit.
    metrics = score(cfg, module, dm, out_dir)
    metrics.update({"experiment": experiment or cfg.name, "steps": trainer.global_step,
                    "train_seconds": train_seconds, "torch_threads": threads})
    write_json(out_dir / "metrics.json", metrics)
    if trainer.logger is not None:
        log_run_metrics(trainer.logger, metrics, trainer.global_step)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    return 0



