"""The registry of comparisons: `configs/suite/<dataset>.yaml` lists a dataset's runs, their variants and
training seeds, the shared budget and evaluation, and how each run is smoke-tested. One owner of "which runs
make the comparison": `avgen suite` (`make suite`), `avgen gpu-smoke`, `avgen gpu-check`, `avgen pipeline`, the
method contract tests and the README's experiment table all read it. No code here knows a method by name: a
run's method and what it starts from come from its config (`Trainable.name`, `start_checkpoints`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from avgen.config import load_config, repo_root

ENTRY_KEYS = {"what", "smoke", "seeds", "variants", "control"}


def suite_names() -> list[str]:
    return sorted(p.stem for p in (repo_root() / "configs" / "suite").glob("*.yaml"))


def load_suite(dataset: str) -> DictConfig:
    path = repo_root() / "configs" / "suite" / f"{dataset}.yaml"
    if not path.is_file():
        raise ValueError(f"no suite registry {path}; known: {', '.join(suite_names())}")
    suite = OmegaConf.load(path)
    for section in ("runs", "extras"):
        for name, entry in (suite.get(section) or {}).items():
            unknown = set(entry or {}) - ENTRY_KEYS
            if unknown:
                raise ValueError(
                    f"{path}: {section}.{name} has unknown keys {sorted(unknown)}; "
                    f"expected some of {sorted(ENTRY_KEYS)}"
                )
    return suite


@dataclass(frozen=True)
class Run:
    """One training run of a suite: `experiment` trained as `name` with `overrides` and `seed`."""

    name: str
    experiment: str
    overrides: tuple[str, ...]
    seed: int

    def train_args(self, evaluate: tuple[str, ...] = ()) -> list[str]:
        return [
            "train",
            f"experiment={self.experiment}",
            f"name={self.name}",
            f"seed={self.seed}",
            *self.overrides,
            *evaluate,
        ]


def runs(dataset: str, seeds: int | None = None) -> list[Run]:
    """What `make suite` trains, in order: each run of the registry and each of its variants, for training
    seeds 0..seeds-1 (a run's own `seeds` caps it: MMDisCo's bases are shared by every seed)."""
    suite = load_suite(dataset)
    out = []
    for seed in range(seeds or suite.seeds):
        for experiment, entry in suite.runs.items():
            entry = entry or {}
            if seed >= entry.get("seeds", seed + 1):
                continue
            suffix = f"_seed{seed}" if seed else ""
            out.append(Run(f"{experiment}{suffix}", experiment, (), seed))
            for key, overrides in (entry.get("variants") or {}).items():
                out.append(Run(f"{experiment}_{key}{suffix}", experiment, tuple(_strings(overrides)), seed))
    return out


def _strings(overrides) -> list[str]:
    """Command-line overrides as written: `${...}` in them is for the run's config to resolve, not the registry's."""
    return [str(o) for o in OmegaConf.to_container(overrides, resolve=False)] if overrides else []


def run_names(dataset: str) -> set[str] | None:
    """The run folders a dataset's registry produces for seed 0 (every run and variant) and its extras; None
    where the dataset has no registry. Other seeds' folders add `_seed<k>` (`is_registered`)."""
    if dataset not in suite_names():
        return None
    suite = load_suite(dataset)
    return {r.name for r in runs(dataset, seeds=1)} | set(suite.get("extras") or {})


def is_registered(run: str, names: set[str]) -> bool:
    return re.sub(r"_seed\d+$", "", run) in names


def entries() -> dict[str, tuple[str, DictConfig]]:
    """{experiment: (dataset, its registry entry)} over every suite's runs and extras."""
    out: dict[str, tuple[str, DictConfig]] = {}
    for dataset in suite_names():
        suite = load_suite(dataset)
        for section in ("runs", "extras"):
            for experiment, entry in (suite.get(section) or {}).items():
                if experiment in out:
                    raise ValueError(
                        f"{experiment} is registered twice (configs/suite/{out[experiment][0]}.yaml and {dataset}.yaml)"
                    )
                out[experiment] = (dataset, entry or OmegaConf.create({}))
    return out


def controls() -> dict[str, str]:
    """{experiment: its control experiment} over every registry (an entry's `control`), for `make compare`."""
    return {e: str(entry.control) for e, (_, entry) in entries().items() if entry.get("control")}


def smoke_overrides(experiment: str) -> list[str]:
    """`debug=smoke` with the registry's tiny sizes for `experiment`."""
    registered = entries()
    if experiment not in registered:
        raise ValueError(f"{experiment} is in no suite registry (configs/suite/*.yaml)")
    return ["debug=smoke", *_strings(registered[experiment][1].get("smoke", []))]


def producer(ckpt: Path, output_dir: Path) -> str | None:
    """The experiment whose runs write `ckpt` (<output_dir>/<name>/checkpoints/last.ckpt), if one does."""
    from avgen.config import experiment_names

    if ckpt.parent.name == "checkpoints" and ckpt.parent.parent.parent == output_dir:
        name = ckpt.parent.parent.name
        return name if name in experiment_names() else None
    return None


@lru_cache(maxsize=256)
def _facts(root: Path, experiment: str) -> tuple[type, tuple[str, ...]]:
    """(the experiment's method class, the experiments it starts from directly): composed once per root."""
    cfg = load_config("train", experiment=experiment)
    cls = get_class(cfg.method._target_)
    parents = (producer(Path(ckpt), Path(cfg.paths.output_dir)) for ckpt in cls.start_checkpoints(cfg.method))
    return cls, tuple(p for p in parents if p is not None)


def upstream(experiment: str) -> list[str]:
    """The experiments whose checkpoints `experiment` starts from (its method's `start_checkpoints`),
    followed to the root, in the order to train them."""
    out: list[str] = []
    for parent in _facts(repo_root(), experiment)[1]:
        out += [e for e in [*upstream(parent), parent] if e not in out]
    return out


def method_of(experiment: str) -> type:
    return _facts(repo_root(), experiment)[0]


def representatives(dataset: str = "synthetic", methods_only: bool = False) -> list[str]:
    """One registered experiment per method class (the first of its runs, then extras), each preceded by
    what it starts from: the runs that exercise every method once. `methods_only`: generative methods only
    (not helper models such as a vocoder), without their upstream runs."""
    from avgen.methods.base import Method

    suite, seen, out = load_suite(dataset), set(), []
    for experiment in [*suite.runs, *(suite.get("extras") or {})]:
        cls = method_of(experiment)
        if cls in seen or (methods_only and not issubclass(cls, Method)):
            continue
        seen.add(cls)
        chain = [experiment] if methods_only else [*upstream(experiment), experiment]
        out += [e for e in chain if e not in out]
    return out


def train(args: list[str], log: Path | None = None) -> int:
    """`avgen <args>` in a child process (its own threads and memory), its output to `log` or the terminal."""
    cmd = [sys.executable, "-m", "avgen.cli.main", *args]
    if log is None:
        return subprocess.run(cmd).returncode
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode


def experiment_table() -> str:
    """The README's experiment table: every registered experiment with what it is, by dataset."""
    lines = ["| experiment | dataset | what |", "|---|---|---|"]
    for experiment, (dataset, entry) in entries().items():
        variants = ", ".join(f"`_{k}`" for k in entry.get("variants") or {})
        what = entry.get("what", "") + (f" (suite variants: {variants})" if variants else "")
        lines.append(f"| `{experiment}` | {dataset} | {what} |")
    return "\n".join(lines)
