"""Progress that reads well in a terminal and in a log file (nohup, SLURM, CI).

In a terminal: tqdm bars. Elsewhere (stderr not a TTY): plain lines, one when a phase starts, one at most
every `every` seconds, and one when it ends, instead of a bar redrawn into the file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def interactive() -> bool:
    return sys.stderr.isatty()


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress(items: Iterable[T], desc: str, total: int | None = None, every: float = 30.0) -> Iterator[T]:
    """`items`, reporting progress under the name `desc` (one bar per phase)."""
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if interactive():
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=desc, total=total, leave=False)
        return
    start = last = time.perf_counter()
    done = 0
    of = f"/{total}" if total is not None else ""
    print(f"{desc}: 0{of}", file=sys.stderr, flush=True)
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every and (total is None or done < total):
            last = now
            eta = f", ETA {duration((total - done) * (now - start) / done)}" if total else ""
            print(f"{desc}: {done}{of} ({duration(now - start)}{eta})", file=sys.stderr, flush=True)
    print(f"{desc}: {done}{of} done in {duration(time.perf_counter() - start)}", file=sys.stderr, flush=True)
