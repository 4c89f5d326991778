"""Timings that survive a busy machine: functions measured in turns (A, B, A, B, ...), so load drifting
during the run hits every side alike and the ratios of their medians hold."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds of each function per round, after `warmup` untimed rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def medians(times: dict[str, list[float]], prefix: str, scale: float = 1000.0) -> dict[str, float]:
    """{prefix<name>: median * scale, prefix<name>_spread: (max - min) * scale} of interleaved timings."""
    import statistics

    out = {}
    for name, ts in times.items():
        out[f"{prefix}{name}"] = scale * statistics.median(ts)
        out[f"{prefix}{name}_spread"] = scale * (max(ts) - min(ts))
    return out
