"""`avgen train experiment=<name> [key=value ...]` (`make train EXP=<name> ARGS=...`).

Builds every part from the composed config, trains with Lightning, then samples and scores the result:
outputs/<name>/{config.yaml, checkpoints/last.ckpt, samples/*.mp4, metrics.json, logs/}.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import OmegaConf

from avgen.callbacks.flops import TrainingFlops
from avgen.callbacks.preemption import EXIT_REQUEUED, Preemption
from avgen.callbacks.reliability import TrainingClock
from avgen.cli.args import split_experiment
from avgen.config import load_config
from avgen.evaluation.report import closing_line, dataset_name, log_run_metrics
from avgen.evaluation.scoring import conditional_counts, score
from avgen.evaluation.sharding import world
from avgen.experiment import (
    build,
    clear_run,
    cpu_processes,
    describe_missing,
    make_trainer,
    missing_prerequisites,
    start_point,
    upstream_compute,
)
from avgen.utils.io import check_writable, redact, write_json, write_text
from avgen.utils.process import process_seconds
from avgen.utils.threads import CoreMeter, free_cores, set_torch_threads, usable_cores
from avgen.utils.timings import expected, fingerprint, record


def unsharded(cfg, module: L.LightningModule, device: torch.device) -> L.LightningModule:
    """The module to evaluate: itself, or under FSDP a plain copy holding the gathered weights (the EMA
    weights ShardedEMA put in at the end of fit) on this rank's device, since ranks drawing different batches
    cannot run a sharded network in lock-step (a collective: every rank calls it)."""
    from avgen.utils.sharding import full_state_dict, is_sharded

    if not is_sharded(module):
        return module
    state = full_state_dict(module)
    _, plain, _ = build(cfg)
    plain.load_state_dict(state)
    return plain.to(device).eval()


def run(overrides: list[str]) -> int:
    started = time.perf_counter()
    others = CoreMeter()  # what other processes use while this one composes and builds (threads: 0)
    experiment, overrides = split_experiment(overrides)
    cfg = load_config("train", overrides, experiment=experiment)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:  # `???` in an experiment: e.g. the local pipeline directories of the out-of-domain bases
        raise ValueError(f"{experiment or cfg.name} needs {', '.join(missing)}: set them as key=value")
    prerequisites = missing_prerequisites(cfg, overrides)
    if prerequisites:  # the whole chain in one message, before any work
        raise FileNotFoundError(describe_missing(experiment or cfg.name, prerequisites))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if torch.cuda.is_available():  # TF32 for the float32 matmuls left outside autocast (Lightning's advice)
        torch.set_float32_matmul_precision("high")
    out_dir = Path(cfg.output_dir)
    # Every part is built (each key reaches its constructor) and the run folder is judged before anything is
    # written: a failed start leaves no trace, and a finished run is never touched unless the user says so.
    dm, module, callbacks = build(cfg)
    dm.setup("fit")  # a missing store fails here, naming the path and the command that makes it
    idle = usable_cores(others.others(), free_cores())  # cores no other process kept busy meanwhile
    threads = set_torch_threads(cfg.threads or max(1, idle // cpu_processes(cfg.trainer)))
    dataset = dataset_name(dm)
    trainer = make_trainer(cfg, callbacks, dataset)
    ckpt_path, nothing_to_do = start_point(out_dir, cfg.resume, cfg.overwrite, cfg.trainer.max_steps)
    if nothing_to_do:
        print(nothing_to_do)
        return 0
    check_writable(out_dir, "output_dir")
    if cfg.overwrite and rank_zero_only.rank == 0:  # DDP ranks re-run this command: only one clears
        removed = clear_run(out_dir)
        if removed:
            print(f"overwrite=true: removed {', '.join(removed)} from {out_dir}")
    resolved = redact(OmegaConf.to_container(cfg, resolve=True))
    if rank_zero_only.rank == 0:
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(resolved))
    flops = next((c for c in callbacks if isinstance(c, TrainingFlops)), None)
    if cfg.compile:  # in place: checkpoint keys stay those of the plain networks
        options = {"backend": cfg.compile_backend, **({"mode": cfg.compile_mode} if cfg.compile_mode else {})}
        compiled = module.compile_networks(**options)
        print(f"compile=true: compiled {', '.join(compiled)} ({', '.join(f'{k} {v}' for k, v in options.items())})")
        if flops is not None:  # the counter would see the compiled kernels, not the model's operations
            flops.enabled = False
    if trainer.logger is not None:
        trainer.logger.log_hyperparams(resolved)
    name = experiment or cfg.name
    evaluated = cfg.evaluate.num_samples + sum(conditional_counts(module, cfg).values())
    shape = fingerprint(*(OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "method", "data", "sampler")))
    model_shape = fingerprint(OmegaConf.to_container(cfg.model, resolve=True), cfg.data.get("batch_size"))
    if rank_zero_only.rank == 0:
        print(expected(name, threads, shape, cfg.trainer.max_steps, evaluated, model_shape))
    setup_seconds = process_seconds() or time.perf_counter() - started  # imports included where known
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    train_seconds = next(c for c in callbacks if isinstance(c, TrainingClock)).seconds  # resumed runs included
    if any(isinstance(c, Preemption) and c.stopped for c in callbacks):  # last.ckpt written, job requeued
        return EXIT_REQUEUED
    # EMAWeightAveraging has copied the averaged weights into the module at the end of fit. Every rank
    # generates its share of the samples (evaluation/sharding.py); rank 0 writes what the run keeps.
    scoring = time.perf_counter()
    module = unsharded(cfg, module, trainer.strategy.root_device)
    if not trainer.is_global_zero:
        with tempfile.TemporaryDirectory(prefix="avgen-rank") as scratch:
            score(cfg, module, dm, Path(scratch))
        return 0
    metrics = score(cfg, module, dm, out_dir)
    record(
        name,
        threads,
        shape,
        setup_seconds,
        train_seconds,
        trainer.global_step,
        time.perf_counter() - scoring,
        evaluated,
        model_shape,
    )
    metrics.update(
        {
            "experiment": name,
            "seed": cfg.seed,
            "steps": trainer.global_step,
            "train_seconds": train_seconds,
            "torch_threads": threads,
            "eval_ranks": world()[1],
            "cpu_cores": free_cores(),
            **(flops.summary(trainer.global_step) if flops is not None else {}),
        }
    )
    metrics.update(upstream_compute(cfg, metrics.get("train_tflops")))
    write_json(out_dir / "metrics.json", metrics)
    if trainer.logger is not None:
        log_run_metrics(trainer.logger, metrics, trainer.global_step)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    print(closing_line(out_dir, metrics))
    return 0
