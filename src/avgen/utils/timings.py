"""What each phase of `avgen train` took on this machine, so the next run can say up front what it will take.

After a run, `record` keeps its phases (setup: composing and building until training starts; training: seconds
per optimizer step; evaluation: seconds per generated sample) under the experiment's name, the thread count
and a fingerprint of what sets the step's cost (model, batch size, method), in `<avgen cache>/timings.json`
(`$AVGEN_TIMINGS_FILE` overrides). At the start of a run, `expected` turns the record of the same experiment,
threads and fingerprint into one line; without one it takes, marked as a rough guide, the latest run with
these threads of the same fingerprint, else of the same model (`model_shape`), else of any model:

    expected on this machine: setup ~20s, training ~11m40s (1600 steps at 2.3 steps/s), evaluation ~40s
    (measured by cmmd_synthetic on 2026-12-06)

Nothing is predicted before the first run: that run records the first measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from avgen.utils.io import cache_root, write_json
from avgen.utils.progress import duration


def timings_path() -> Path:
    return Path(os.environ.get("AVGEN_TIMINGS_FILE") or cache_root() / "timings.json")


def fingerprint(*parts: Any) -> str:
    """A short hash of what sets a step's cost (e.g. the model and method configs, the batch size)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _key(experiment: str, threads: int, shape: str) -> str:
    return f"{socket.gethostname()}/{experiment}/threads={threads}/{shape}"


def record(
    experiment: str,
    threads: int,
    shape: str,
    setup_s: float,
    train_s: float,
    steps: int,
    eval_s: float | None,
    eval_samples: int | None,
    model_shape: str | None = None,
) -> None:
    """Keep this run's phases (a run that took no steps teaches nothing about training speed)."""
    if steps <= 0:
        return
    path = timings_path()
    try:
        table = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        table = {}  # a damaged file is replaced, never fatal
    table[_key(experiment, threads, shape)] = {
        "experiment": experiment,
        "date": time.strftime("%Y-%m-%d"),
        "time": time.time(),  # "latest" among runs of one day
        "setup_s": setup_s,
        "seconds_per_step": train_s / steps,
        "eval_s_per_sample": eval_s / eval_samples if eval_s is not None and eval_samples else None,
        "shape": shape,
        "model_shape": model_shape,
    }
    try:
        write_json(path, table)
    except OSError:
        pass  # a read-only cache costs the next prediction, not this run


def expected(
    experiment: str, threads: int, shape: str, max_steps: int, eval_samples: int, model_shape: str | None = None
) -> str:
    """The one-line forecast for a run of `max_steps` steps and `eval_samples` evaluated samples."""
    try:
        table: dict[str, Any] = json.loads(timings_path().read_text())
    except (OSError, json.JSONDecodeError):
        table = {}
    host = socket.gethostname()
    entry, exact = table.get(_key(experiment, threads, shape)), True
    if entry is None:
        exact = False
        same_host = [v for k, v in table.items() if k.startswith(f"{host}/") and f"/threads={threads}/" in k]
        if not same_host:
            return "expected: no run measured on this machine yet (this one records its phases for the next)"
        # the nearest run: the same step cost, else the same network, else the latest
        entry = max(
            same_host,
            key=lambda v: (
                v.get("shape") == shape,
                model_shape is not None and v.get("model_shape") == model_shape,
                v.get("time", 0.0),
            ),
        )
    parts = [f"setup ~{duration(entry['setup_s'])}"]
    if max_steps > 0:
        rate = 1 / entry["seconds_per_step"]
        parts.append(f"training ~{duration(max_steps / rate)} ({max_steps} steps at {rate:.1f} steps/s)")
    if eval_samples and entry.get("eval_s_per_sample") is not None:
        parts.append(f"evaluation ~{duration(eval_samples * entry['eval_s_per_sample'])}")
    other = "" if exact else ", another run shape: a rough guide"
    return f"expected on this machine: {', '.join(parts)} (measured by {entry['experiment']} on {entry['date']}{other})"
