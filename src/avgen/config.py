"""Config composition: Hydra groups under `configs/`, experiment overrides under `experiments/`.

Composed configs are in struct mode: overriding or reading a key that does not exist is an error naming
the key (Hydra: "Key 'x' is not in struct"), never silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

# ${clip_window:clip,margin}: the seconds a clip spans with a margin on each side
OmegaConf.register_new_resolver("clip_window", lambda clip, margin: float(clip) + 2 * float(margin), replace=True)


def repo_root() -> Path:
    """The directory holding `configs/` and `experiments/`: $AVGEN_ROOT, else the source checkout."""
    candidates = [os.environ.get("AVGEN_ROOT"), Path(__file__).resolve().parents[3], Path.cwd()]
    for c in candidates:
        if c and (Path(c) / "configs").is_dir():
            return Path(c).resolve()
    raise FileNotFoundError("cannot find avgen's configs/ directory; set AVGEN_ROOT to the repository root")


def experiment_names() -> list[str]:
    return sorted(p.stem for p in (repo_root() / "experiments").glob("*.yaml"))


def load_config(name: str, overrides: list[str] | tuple[str, ...] = (), experiment: str | None = None) -> DictConfig:
    """Compose `configs/<name>.yaml` with an optional experiment and command-line overrides."""
    root = repo_root()
    overrides = list(overrides)
    if experiment:
        if experiment not in experiment_names():
            raise ValueError(f"unknown experiment {experiment!r}; known: {', '.join(experiment_names()) or 'none'}")
        _check_experiment_keys(root, name, experiment, overrides)
        # experiments/<name>.yaml are `# @package _global_` override files; the repo root is on the search
        # path so that `experiments` is a config group. Command-line overrides are applied after it.
        overrides = [f"+experiments={experiment}", *overrides]
    cfg = _compose(root, name, overrides)
    OmegaConf.set_struct(cfg, True)
    return cfg


def _compose(root: Path, name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(root / "configs"), version_base="1.3"):
        return compose(config_name=name, overrides=[f"hydra.searchpath=[file://{root}]", *overrides])


def _check_experiment_keys(root: Path, name: str, experiment: str, overrides: list[str]) -> None:
    """Hydra merges config *files* without struct checks, so a misspelt key in an experiment would be
    silently added. Merge the experiment's body in struct mode onto the config it overrides, so that
    every key it sets must already exist (the error names the key and the file)."""
    path = root / "experiments" / f"{experiment}.yaml"
    body = OmegaConf.load(path)
    groups = []
    for entry in body.pop("defaults", []):
        if isinstance(entry, str):
            continue  # `_self_`
        ((key, value),) = entry.items()
        groups.append(f"{key.replace('override', '').strip().lstrip('/')}={value}")
    group_dirs = {p.name for p in (root / "configs").iterdir() if p.is_dir()}
    user_groups = [o for o in overrides if o.split("=", 1)[0].lstrip("+~").split("/")[0] in group_dirs]
    base = _compose(root, name, groups + user_groups)
    OmegaConf.set_struct(base, True)
    try:
        OmegaConf.merge(base, body)
    except Exception as e:
        raise ConfigCompositionException(f"{path}: {e}") from e
