"""Command-level `key=value` arguments (not config keys) taken off a command line."""

from __future__ import annotations


def pop(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """The value of a command-level `key=value` (not a config key; empty = None) and the other overrides."""
    value = next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")), None)
    return value or None, [o for o in overrides if not o.startswith(f"{key}=")]


def split_experiment(overrides: list[str]) -> tuple[str | None, list[str]]:
    return pop(overrides, "experiment")
