"""Config composition: Hydra groups under `configs/`, experiment overrides under `experiments/`.

Composed configs are in struct mode: overriding or reading a key that does not exist is an error naming
the key (Hydra: "Key 'x' is not in struct"), never silently ignored.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

# ${clip_window:clip,margin}: the seconds a clip spans with a margin on each side
OmegaConf.register_new_resolver("clip_window", lambda clip, margin: float(clip) + 2 * float(margin), replace=True)


def repo_root() -> Path:
    """The directory holding `configs/` and `experiments/`: $AVGEN_ROOT, else the source checkout."""
    candidates = [os.environ.get("AVGEN_ROOT"), Path(__file__).resolve().parents[2], Path.cwd()]
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
        # path so that `experiments` is a config group (train.yaml's defaults). The run is named after the
        # file unless the command line names it; command-line overrides are applied after it.
        primary = OmegaConf.load(root / "configs" / f"{name}.yaml")
        listed = any(isinstance(d, DictConfig) and "experiments" in d for d in primary.get("defaults", []))
        named = [f"name={experiment}"] if "name" in primary.keys() else []  # `in` skips a missing value
        overrides = [f"{'' if listed else '+'}experiments={experiment}", *named, *overrides]
    try:
        cfg = _compose(root, name, overrides)
    except ConfigCompositionException:
        _explain_unknown_keys(root, name, overrides)
        raise
    OmegaConf.set_struct(cfg, True)
    return cfg


def did_you_mean(parent: str, leaf: str, candidates: list[str]) -> str:
    """ "; did you mean <parent>.<nearest candidate>?" (names compared without their common parent)."""
    close = difflib.get_close_matches(leaf, candidates, n=1, cutoff=0.6)
    return f"; did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""


def _explain_unknown_keys(root: Path, name: str, overrides: list[str]) -> None:
    """Hydra answers an override of a key that does not exist with advice to append it with `+`, which is
    wrong for a misspelling (the component would reject it later). Name the key and the nearest real one."""
    groups = {p.name for p in (root / "configs").iterdir() if p.is_dir()} | {"experiments"}
    assignments = [
        o.split("=", 1)[0]
        for o in overrides
        if "=" in o and not o.startswith(("+", "~", "hydra.")) and o.split("=", 1)[0] not in groups
    ]  # a group's choice is not a key
    try:
        base = _compose(root, name, [o for o in overrides if o.lstrip("+").startswith("experiments=")])
    except ConfigCompositionException:
        return
    for key in assignments:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        if isinstance(node, DictConfig) and leaf not in node.keys():  # `in` skips a missing value
            raise ValueError(f"unknown config key {key}{did_you_mean(parent, leaf, [str(k) for k in node])}") from None


def build_part(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """`instantiate(node)`, where a keyword its target does not accept is named with the nearest one it does
    (`trainer.max_step is not a parameter of lightning.Trainer; did you mean trainer.max_steps?`)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if bad is None or "_target_" not in node:
            raise
        try:
            params = [p for p in inspect.signature(get_object(node._target_)).parameters if p != "self"]
        except (TypeError, ValueError, ImportError):
            raise e from None
        if bad.group(1) in params:  # raised deeper down, by another constructor
            raise
        raise ValueError(
            f"{key}.{bad.group(1)} is not a parameter of {node._target_}{did_you_mean(key, bad.group(1), params)}"
        ) from None


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
