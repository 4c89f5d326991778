"""`avgen <command> [key=value ...]`: the single entry point behind the Makefile targets."""

from __future__ import annotations

import os
import sys

COMMANDS = {
    "train": ("avgen.cli.train", "train an experiment: experiment=<name> (configs/train.yaml, experiments/)"),
    "prepare": ("avgen.cli.prepare", "raw media -> clip store (configs/prepare.yaml)"),
    "toy": ("avgen.methods.mmdisco.toy_command", "MMDisCo's 2-D toy experiment -> outputs/toy/ (configs/toy.yaml)"),
    "bench": ("avgen.cli.bench", "speed figures -> outputs/bench/results.json (configs/bench.yaml)"),
    "sample": (
        "avgen.cli.sample",
        "mp4s with audio from a trained run: experiment=<name> [mode=joint|v2a|a2v] [num=N]",
    ),
    "eval": ("avgen.cli.eval", "score a trained run again: experiment=<name> [ckpt=<path>] -> outputs/<name>/eval/"),
    "consolidate": (
        "avgen.cli.consolidate",
        "an FSDP run's distributed checkpoint folder as one checkpoint file: <folder> [out=<file>]",
    ),
    "score": (
        "avgen.cli.score",
        "score a folder of mp4s (other projects' samples too): <dir> [ref=<dir>] [metrics=av_align,...]",
    ),
    "guidance-sweep": ("avgen.cli.guidance_sweep", "choose a run's v2a/a2v guidance lambda on the validation split"),
    "fake-cache": (
        "avgen.cli.fake_cache",
        "MMDisCo's fake pairs sampled from its bases (resumable): experiment=<name>",
    ),
    "smoke-ood": ("avgen.cli.smoke_ood", "tiny random AudioLDM + AnimateDiff pipelines through MMDisCo out of domain"),
    "gpu-check": (
        "avgen.bench.gpu_check",
        "measure a GPU machine: U-Net MFU, default experiment, evaluation, every method",
    ),
    "doctor": ("avgen.cli.doctor", "can this install run the README's commands? a table; exit 0 when nothing fails"),
    "weights": (
        "avgen.cli.weights",
        "fetch + verify pretrained weights [which=<name>,...], then a table of what is present",
    ),
    "compare": (
        "avgen.cli.compare",
        "runs side by side -> outputs/compare/<dataset>.md + plots (configs/compare.yaml)",
    ),
    "wandb-report": (
        "avgen.cli.wandb_report",
        "the W&B dashboard of a dataset group as code: saved online, its layout written offline",
    ),
    "suite": (
        "avgen.cli.suite",
        "train what a suite registry lists and is missing, then compare: [dataset=synthetic] [seeds=N]",
    ),
    "pipeline": (
        "avgen.cli.pipeline",
        "an experiment with the runs it starts from (bases, parents): experiment=<name>",
    ),
    "gpu-smoke": ("avgen.cli.gpu_smoke", "a short DDP + bf16 run of every registered method on the visible GPUs"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print("usage: avgen <command> [key=value ...]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        return 0
    command, overrides = argv[0], argv[1:]
    from avgen.utils.numba_cache import configure as configure_numba_cache
    from avgen.utils.warnings import quiet

    # before anything imports librosa: processes started together must not race on numba's cache
    configure_numba_cache()

    quiet()
    if command not in COMMANDS:
        print(f"avgen: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    import importlib

    if command == "doctor":  # before Hydra is imported: it checks whether Hydra imports
        return importlib.import_module(COMMANDS[command][0]).run(overrides)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    module = importlib.import_module(COMMANDS[command][0])
    try:
        return module.run(overrides) or 0
    except (HydraException, OmegaConfBaseException) as e:  # config errors: one clear line, no traceback
        cause = e.__cause__
        if isinstance(cause, (FileNotFoundError, PermissionError, ValueError)) and not os.environ.get("AVGEN_DEBUG"):
            print(f"avgen {command}: error: {cause}", file=sys.stderr)  # a user error raised while building a part
        else:
            print(f"avgen {command}: config error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, PermissionError, ValueError) as e:  # bad paths and inputs
        if os.environ.get("AVGEN_DEBUG"):
            raise
        print(f"avgen {command}: error: {e}  (AVGEN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from avgen.callbacks.reliability import TrainingDiverged

        if not isinstance(e, TrainingDiverged):
            raise
        print(f"avgen {command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
