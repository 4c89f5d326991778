"""An experiment's parts built from its composed config: data module, LightningModule, callbacks, logger,
Trainer; and a trained run reloaded from its checkpoint. Commands and benchmarks share these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import ModelParallelStrategy
from omegaconf import DictConfig, open_dict

from avgen.callbacks.preemption import Preemption
from avgen.callbacks.reliability import (
    AtomicCheckpointIO,
    CheckpointAtEnd,
    ReplicaConsistencyCheck,
    ResolvedConfigInCheckpoint,
    TrainingClock,
)
from avgen.config import build_part, load_config
from avgen.evaluation.report import method_name, variant
from avgen.suite import producer
from avgen.utils.checkpoints import load_checkpoint
from avgen.utils.ddp import CurrentStreamDDP
from avgen.utils.precision import ClippingMixedPrecision, autocast_device


def cpu_processes(trainer_cfg: DictConfig) -> int:
    """Training processes sharing this machine's cores (CPU DDP runs one per device)."""
    devices = trainer_cfg.get("devices", 1)
    return devices if trainer_cfg.get("accelerator") == "cpu" and isinstance(devices, int) and devices > 1 else 1


def build(cfg: DictConfig) -> tuple[Any, L.LightningModule, list[L.Callback]]:
    """The data module, the LightningModule and the callbacks of a composed train config."""
    dm = build_part(cfg.data, "data")
    net = build_part(cfg.model, "model")
    module = build_part(cfg.method, "method", net=net)
    # an experiment drops a default callback by setting it to null (e.g. no EMA for the GAN vocoder)
    callbacks = [CheckpointAtEnd()] + [
        build_part(c, f"callbacks.{name}") for name, c in cfg.callbacks.items() if c is not None
    ]
    callbacks += [ResolvedConfigInCheckpoint(cfg), TrainingClock()]
    if cfg.trainer.get("strategy") == "fsdp":
        callbacks = fsdp_callbacks(callbacks)
    return dm, module, callbacks


def fsdp_callbacks(callbacks: list[L.Callback]) -> list[L.Callback]:
    """Under FSDP: the EMA of the shards (callbacks/ema.py: ShardedEMA) instead of Lightning's, which deep-copies
    the module; no replica check (the ranks hold different shards by design) and no validation media (rank 0
    alone cannot run a sharded network)."""
    from avgen.callbacks.ema import MultiTensorEMA, ShardedEMA
    from avgen.callbacks.media import ValidationMedia

    out = []
    for c in callbacks:
        if isinstance(c, MultiTensorEMA):
            out.append(ShardedEMA(c.decay, c.update_starting_at_step or 0))
        elif not isinstance(c, (ValidationMedia, ReplicaConsistencyCheck)):
            out.append(c)
    return out


def make_logger(cfg: DictConfig, dataset: str | None = None, **overrides: Any):
    """The configured logger; W&B runs of one dataset share a group, the method and its variant are the job
    type (nCMMD apart from CMMD), so methods sit side by side in the W&B UI. The group and job type chosen
    are written into `cfg.logger`, so the config the run logs records them."""
    kwargs: dict[str, Any] = {}
    if cfg.logger._target_.endswith("WandbLogger") and dataset is not None:
        method = method_name(cfg)
        with open_dict(cfg):
            cfg.logger.group = cfg.logger.group or dataset
            cfg.logger.job_type = cfg.logger.job_type or f"{method} ({variant(cfg)})"[:64]  # W&B's limit
        kwargs = {"tags": [dataset, method, variant(cfg)]}
    return build_part(cfg.logger, "logger", **kwargs, **overrides)


class FSDPStrategy(ModelParallelStrategy):
    """`trainer.strategy: fsdp`: Lightning's ModelParallelStrategy (FSDP2) over every process as one
    data-parallel mesh, distributed checkpoints; `param_dtype` is what the units gather for compute."""

    def __init__(self, trainer_cfg: DictConfig):
        devices, nodes = trainer_cfg.get("devices", 1), trainer_cfg.get("num_nodes", 1)
        per_node = devices if isinstance(devices, int) and devices > 0 else max(1, torch.cuda.device_count())
        super().__init__(data_parallel_size=per_node * nodes, tensor_parallel_size=1)
        # gathered for compute in bf16 under bf16 precision (autocast does the rest), else in fp32
        self.param_dtype = "bf16" if str(trainer_cfg.get("precision", "")).startswith("bf16") else "fp32"


def make_trainer(cfg: DictConfig, callbacks: list[L.Callback], dataset: str | None = None) -> L.Trainer:
    """The configured Trainer, writing checkpoints atomically."""
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a progress bar it may not show
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    # `ddp` wraps the model on the training stream (utils/ddp.py: no AccumulateGrad stream mismatch)
    extra: dict[str, Any] = {"strategy": CurrentStreamDDP()} if cfg.trainer.get("strategy") == "ddp" else {}
    if cfg.trainer.get("strategy") == "fsdp":  # FSDP2: the method's configure_model shards (utils/sharding.py)
        extra["strategy"] = FSDPStrategy(cfg.trainer)
    max_steps, every = cfg.trainer.get("max_steps", -1), cfg.trainer.get("log_every_n_steps", 50)
    if max_steps and 0 < max_steps < every:  # a run shorter than the logging interval still logs its loss
        extra["log_every_n_steps"] = max_steps
    plugins: list[Any] = [AtomicCheckpointIO()]
    if any(isinstance(c, Preemption) for c in callbacks) and SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))  # callbacks/preemption.py handles the signal
    if cfg.trainer.get("precision") in ("bf16-mixed", "16-mixed"):  # fused optimizers may clip (utils/precision.py)
        plugins.append(ClippingMixedPrecision(cfg.trainer.precision, autocast_device(cfg.trainer.get("accelerator"))))
        extra["precision"] = None  # the plugin is the precision
    return build_part(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=make_logger(cfg, dataset),
        default_root_dir=str(cfg.output_dir),
        plugins=plugins,
        **extra,
    )


def launch_ranks(cfg: DictConfig) -> tuple[Any, int]:
    """Processes to evaluate or sample a trained run on what it trained with: the trainer's accelerator,
    devices and nodes through Lightning Fabric (DDP: one process per device, launched like the Trainer's;
    every rank then generates its share of the samples, evaluation/sharding.py). Returns this process's
    device and global rank; on one device, (that device, 0)."""
    from lightning.fabric import Fabric

    t = cfg.trainer
    accelerator = t.get("accelerator", "auto")
    if accelerator in ("gpu", "cuda") and not _has_gpu():
        raise ValueError(f"trainer.accelerator={accelerator} but no GPU is visible; trainer=cpu evaluates on the CPU")
    # Fabric's default strategy is DDP over several devices, a single device otherwise
    fabric = Fabric(accelerator=accelerator, devices=t.get("devices", 1), num_nodes=t.get("num_nodes", 1))
    fabric.launch()
    return fabric.device, fabric.global_rank


def load_trained(
    experiment: str | None, overrides: list[str], ckpt: str | None = None
) -> tuple[Any, Any, Any, dict, str]:
    """The experiment's config (with overrides), its data module and its module with a checkpoint's weights
    (`ckpt`, default the run's last.ckpt); also the checkpoint and the experiment name."""
    cfg = load_config("train", overrides, experiment=experiment)
    name = experiment or cfg.name
    path = Path(ckpt or Path(cfg.output_dir) / "checkpoints" / "last.ckpt")
    state = load_checkpoint(path, f"train the run first: make train EXP={name}")
    dm, module, _ = build(cfg)
    dm.setup("fit")
    missing, unexpected = module.load_state_dict(state["state_dict"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit {name}'s model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return cfg, dm, module, {**state, "path": str(path)}, name


# What a run writes into its folder; `overwrite=true` removes these (and nothing else) before starting over.
RUN_OUTPUTS = ("checkpoints", "logs", "samples", "eval", "val_media", "metrics.json", "replicas.json", "config.yaml")


def start_point(
    out_dir: Path, resume: bool | str, overwrite: bool, max_steps: int | None
) -> tuple[str | None, str | None]:
    """(checkpoint to resume from, or None to start; a message when there is nothing to do). A finished run
    (metrics.json) or an unfinished one (checkpoints/last.ckpt) in `out_dir` is never replaced unless the
    user says so: resume continues it, overwrite starts over, another `name=` starts beside it. `resume="auto"`
    (a requeued cluster job) continues where there is a checkpoint and starts where there is none."""
    last, metrics = out_dir / "checkpoints" / "last.ckpt", out_dir / "metrics.json"
    if overwrite:
        return None, None
    steps = _steps(metrics)
    if resume == "auto":
        if last.exists() or steps is not None:
            resume = True
        else:
            return None, None
    if resume:
        if not last.exists():  # a file, or a distributed checkpoint's folder (FSDP)
            raise FileNotFoundError(
                f"resume=true (RESUME=1), but {last} does not exist: there is nothing to resume "
                f"(drop RESUME to start the run)"
            )
        if steps is not None and max_steps is not None and max_steps > 0 and steps >= max_steps:
            return None, f"{out_dir} is finished ({steps} of {max_steps} steps, metrics.json): nothing to resume"
        return str(last), None
    options = "RESUME=1 (resume=true) continues it, overwrite=true starts it over, name=<new> starts another run"
    if steps is not None or metrics.is_file():
        raise FileExistsError(
            f"{out_dir} holds a finished run (metrics.json{f', {steps} steps' if steps else ''}); {options}"
        )
    if last.is_file():
        raise FileExistsError(f"{out_dir} holds an unfinished run (checkpoints/last.ckpt); {options}")
    return None, None


def _steps(metrics: Path) -> int | None:
    import json

    try:
        return int(json.loads(metrics.read_text())["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_run(out_dir: Path) -> list[str]:
    """Remove what an earlier run wrote into `out_dir` (RUN_OUTPUTS); returns the names removed."""
    import shutil

    removed = []
    for name in RUN_OUTPUTS:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def missing_prerequisites(cfg: DictConfig, overrides: list[str] = ()) -> list[tuple[str, str]]:
    """What this experiment needs that is not there, followed to the root, in the order to make it: the
    data store, then the checkpoints its method starts from (`start_checkpoints`: a fine-tune's parent,
    frozen bases), each with what *that* experiment needs before it. Each entry: (what is missing, the command
    that makes it).
    `overrides` of `paths.*` carry over to the experiments followed."""
    out: list[tuple[str, str]] = []
    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not _has_gpu():
        out.append(
            (
                f"a GPU (this experiment trains with trainer={cfg.trainer.get('accelerator')}; none is visible here)",
                "run it on a GPU machine, or add trainer=cpu for a small trial",
            )
        )
    data = cfg.data.get("real", cfg.data) if "real" in cfg.data else cfg.data
    store = data.get("store")
    if store and not (Path(store) / "metadata.json").is_file():
        out.append(
            (f"the store {store}", data.get("make_hint") or f"make prepare DATASET=<name> RAW=<dir> OUT={store}")
        )
    for ckpt in get_class(cfg.method._target_).start_checkpoints(cfg.method):
        if Path(ckpt).is_file():
            continue
        parent = producer(Path(ckpt), Path(cfg.paths.output_dir))
        if parent is None:
            out.append((f"the checkpoint {ckpt}", "point the config at an existing checkpoint"))
            continue
        upstream = load_config("train", [o for o in overrides if o.startswith("paths.")], experiment=parent)
        out += [m for m in missing_prerequisites(upstream, overrides) if m not in out]
        out.append((f"{parent}'s checkpoint {ckpt}", f"make train EXP={parent}"))
    return out


def upstream_compute(cfg: DictConfig, own_tflops: float | None) -> dict[str, Any]:
    """The compute that produced this run's starting point, beside its own: every run it starts from (its
    method's `start_checkpoints`; their metrics.json totals include their own upstream, followed through
    their config.yaml where they predate the totals) and the method's other inputs (`upstream_work`).
    {upstream: [{"from", "tflops"}], upstream_tflops, total_tflops}; a part without a count is named with
    tflops None and leaves both totals None, never 0."""
    import json

    from omegaconf import OmegaConf

    cls = get_class(cfg.method._target_)
    parts: list[dict[str, Any]] = []
    for ckpt in cls.start_checkpoints(cfg.method):
        run_dir = Path(ckpt).parent.parent
        metrics_path, config_path = run_dir / "metrics.json", run_dir / "config.yaml"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        if "total_tflops" in metrics:
            tflops = metrics["total_tflops"]
        elif "train_tflops" in metrics and config_path.is_file():  # a run from before the totals
            tflops = upstream_compute(OmegaConf.load(config_path), metrics["train_tflops"])["total_tflops"]
        else:
            tflops = None
        parts.append({"from": run_dir.name, "tflops": tflops})
    parts += [{"from": what, "tflops": tflops} for what, tflops in cls.upstream_work(cfg)]
    known = all(isinstance(p["tflops"], (int, float)) for p in parts)
    upstream = sum(p["tflops"] for p in parts) if known else None
    total = own_tflops + upstream if upstream is not None and isinstance(own_tflops, (int, float)) else None
    return {"upstream": parts, "upstream_tflops": upstream, "total_tflops": total}


def describe_missing(name: str, missing: list[tuple[str, str]]) -> str:
    steps = "\n".join(f"  {i}. {what}: `{command}`" for i, (what, command) in enumerate(missing, 1))
    runs = sum(command.startswith("make train") for _, command in missing)
    chain = f"\n(or the runs in one command: `make pipeline EXP={name}`)" if runs else ""
    return f"{name} cannot start; it needs, in this order:\n{steps}{chain}"
