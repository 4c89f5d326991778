"""`avgen weights [which=<name>,<name>] [fetch=false]` (`make weights [WHICH=...]`): download and verify the
registry's pretrained weights (all, or the named ones) into the caches, then print what is present.

For an offline cluster: run it where there is network (with the cluster's HF_HOME / AVGEN_WEIGHTS_DIR, or
copy those folders over afterwards). `fetch=false` only prints the table. Exit code 1 when a fetch failed.
"""

from __future__ import annotations

import sys

from avgen.weights import REGISTRY, HashMismatch, WeightsMissing, fetch, locate, record_of, weights_dir

COLUMNS = ("name", "status", "pinned", "path")


def status_rows(names: list[str]) -> list[tuple[str, ...]]:
    """One row per entry, from what is on disk and in the lock only: nothing is downloaded or hashed."""
    rows = []
    for name in names:
        entry = REGISTRY[name]
        path = locate(entry)
        record = record_of(entry)
        if path is None:
            status = "missing"
        elif record is not None and record["path"] == str(path):
            status = "verified"
        else:
            status = "present"  # verified (and recorded) on its first use
        rows.append((name, status, entry.pin_note(), str(path) if path else "-"))
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [COLUMNS, *rows]]
    return "\n".join(lines)


def run(overrides: list[str]) -> int:
    args = dict(o.split("=", 1) for o in overrides if "=" in o)
    unknown = sorted(set(args) - {"which", "fetch"}) + [o for o in overrides if "=" not in o]
    if unknown:
        print(
            f"avgen weights takes which=<name>[,<name>...] and fetch=true|false, not {' '.join(unknown)}",
            file=sys.stderr,
        )
        return 2
    names = [n for n in args.get("which", "").split(",") if n] or list(REGISTRY)
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        print(f"avgen weights: unknown {', '.join(bad)}; the registry has {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    failed = {}
    if args.get("fetch", "true").lower() in {"true", "1", "yes"}:
        for name in names:
            try:
                fetch(REGISTRY[name])
            except (WeightsMissing, HashMismatch, OSError) as e:  # one failure does not stop the others
                failed[name] = str(e)
    print(format_table(status_rows(names)))
    print(f"weights dir: {weights_dir()} (lock.json: the hashes verified here)")
    for name, error in failed.items():
        print(f"avgen weights: {name}: {error}", file=sys.stderr)
    return 1 if failed else 0
