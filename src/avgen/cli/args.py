"""Command-level `key=value` arguments (not config keys) taken off a command line."""

from __future__ import annotations


def pop(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """The value of a command-level `key=value` (not a config key; empty = None) and the other overrides."""
    value = next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")), None)
    return value or None, [o for o in overrides if not o.startswith(f"{key}=")]


TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def pop_flag(overrides: list[str], key: str, default: bool = False) -> tuple[bool, list[str]]:
    """A command-level `key=true|false` (also 1/0, yes/no) and the other overrides; anything else is an error
    naming the key, never a silent default."""
    value, rest = pop(overrides, key)
    if value is None:
        return default, rest
    if value.lower() not in TRUE + FALSE:
        raise ValueError(f"{key}={value!r}: expected true or false")
    return value.lower() in TRUE, rest


def split_experiment(overrides: list[str]) -> tuple[str | None, list[str]]:
    return pop(overrides, "experiment")
