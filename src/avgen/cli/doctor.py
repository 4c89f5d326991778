"""`avgen doctor [store=<dir>] [outputs=<dir>] [fix=true]` (`make doctor`): a table of what this install can
run; exit code 0 only when nothing FAILs. `fix=true` removes a numba cache that fails its check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from avgen.utils.doctor import format_table, run_checks


def run(overrides: list[str]) -> int:
    # no Hydra here: the doctor must run where the config stack itself does not import
    args = dict(o.split("=", 1) for o in overrides if "=" in o)
    unknown = sorted(set(args) - {"store", "outputs", "fix"}) + [o for o in overrides if "=" not in o]
    if unknown:
        print(f"avgen doctor takes store=, outputs= and fix=, not {' '.join(unknown)}")
        return 2
    fix = args.get("fix", "false").lower()
    checks = run_checks(Path(args.get("store", "data/synthetic/store")), Path(args.get("outputs", "outputs")))
    print(format_table(checks))
    failed = [c for c in checks if c.status == "FAIL"]
    jit = next((c for c in failed if c.name == "numba JIT"), None)
    if jit is not None and fix in {"true", "1", "yes"}:
        folder = os.environ.get("NUMBA_CACHE_DIR")
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"removed {folder}: the next avgen process compiles it again")
    print(
        "doctor: "
        + (
            f"{len(failed)} check(s) failed"
            if failed
            else "every check passed" + (" (warnings above)" if any(c.status == "warn" for c in checks) else "")
        )
    )
    return 1 if failed else 0
