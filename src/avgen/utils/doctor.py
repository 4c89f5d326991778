"""`avgen doctor`: does this install run the README's commands? Each check returns a row of a table.

Status: `ok`, `warn` (works, but not as tested: e.g. versions off the lock, no GPU, no store built yet) or
`FAIL` (a README command would fail). Checks that could crash natively (numba's JIT cache) run in a child
process, so a crash becomes a row with its fix instead of a segfault of the user's run.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from avgen.utils import numba_cache

# Imported by the commands (the distribution name where it differs from the module's).
MODULES = {
    "torch": "torch",
    "lightning": "lightning",
    "hydra": "hydra-core",
    "omegaconf": "omegaconf",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "torchmetrics": "torchmetrics",
    "librosa": "librosa",
    "numba": "numba",
    "av": "av",
    "decord": "decord",
    "cv2": "opencv-python-headless",
    "soundfile": "soundfile",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "wandb": "wandb",
}
# decord's only wheel is tagged cp36 although it runs on every CPython 3; `pip check` reports that tag alone.
PIP_CHECK_KNOWN = ("decord 0.6.0 is not supported on this platform",)
LOCK = Path(__file__).resolve().parents[3] / "requirements.lock"  # the repository root of a source checkout


@dataclass
class Check:
    name: str
    status: str  # ok | warn | FAIL
    detail: str


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """`name==version` lines of the lock -> {normalised name: version}."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    status = "ok" if sys.version_info[:2] == (3, 11) else "warn"
    return Check("python", status, f"{version}" + ("" if status == "ok" else " (the lock is for 3.11)"))


def check_imports() -> Check:
    failed = []
    for module in MODULES:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any import failure is what this row reports
            failed.append(f"{module} ({type(e).__name__}: {e})")
    if failed:
        return Check("imports", "FAIL", "; ".join(failed) + " -> make setup")
    return Check("imports", "ok", f"{len(MODULES)} packages")


def check_versions(lock: Path = LOCK) -> Check:
    if not lock.is_file():
        return Check("versions", "warn", f"no lock at {lock} (not a source checkout)")
    off = []
    for name, pinned in sorted(read_lock(lock).items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            off.append(f"{name} missing (lock {pinned})")
            continue
        if installed != pinned:
            off.append(f"{name} {installed} (lock {pinned})")
    if off:
        return Check(
            "versions",
            "warn",
            f"{len(off)} off the lock: {', '.join(off[:6])}" + (" ..." if len(off) > 6 else "") + " -> make setup",
        )
    return Check("versions", "ok", f"as {lock.name} ({len(read_lock(lock))} pins)")


def check_pip() -> Check:
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    problems = [
        line
        for line in proc.stdout.splitlines()
        if line.strip() and line.strip() not in PIP_CHECK_KNOWN and not line.startswith("No broken requirements")
    ]
    if problems:
        return Check("pip check", "FAIL", "; ".join(problems[:4]))
    return Check("pip check", "ok", "requirements consistent")


def check_jit() -> Check:
    """librosa's numba functions, compiled or loaded from the cache, in a child process."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    code = "from avgen.utils.numba_cache import warm_up; warm_up()"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    if proc.returncode == 0:
        return Check("numba JIT", "ok", f"cache {folder}" if folder else "default cache")
    fix = (
        f"the cache is corrupted: remove {folder} (`avgen doctor fix=true`); it is rebuilt on the next run"
        if folder
        else "set no NUMBA_CACHE_DIR so that avgen manages the cache"
    )
    return Check("numba JIT", "FAIL", f"librosa's JIT functions {numba_cache.describe_failure(proc)}; {fix}")


def check_folder(name: str, path: Path, must_exist: bool = False, hint: str = "") -> Check:
    """Writable, without creating anything (utils/io.check_writable creates the folder it checks)."""
    path = Path(path)
    if not path.exists():
        if must_exist:
            return Check(name, "warn", f"{path} not there yet{' -> ' + hint if hint else ''}")
        probe = next(p for p in (path, *path.parents) if p.exists())
    else:
        probe = path
    if os.access(probe, os.W_OK):
        return Check(name, "ok", f"{path} writable")
    return Check(name, "FAIL", f"{path} is not writable (checked {probe})")


def check_media() -> Check:
    import av

    missing = [c for c in ("libx264", "aac") if c not in av.codecs_available]
    if missing:
        return Check("media codecs", "FAIL", f"PyAV has no {', '.join(missing)} encoder: mp4 samples cannot be written")
    return Check("media codecs", "ok", f"PyAV {av.__version__}: H.264 + AAC")


def check_gpu() -> Check:
    import torch

    if not torch.cuda.is_available():
        return Check("GPU", "warn", f"none visible (torch {torch.__version__}): CPU runs only")
    names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
    nccl = torch.distributed.is_available() and torch.distributed.is_nccl_available()
    return Check(
        "GPU",
        "ok" if nccl else "warn",
        f"{torch.cuda.device_count()} x {', '.join(names)}; CUDA {torch.version.cuda}; "
        f"NCCL {'available' if nccl else 'missing: DDP over GPUs fails'}",
    )


def check_weights() -> Check:
    """Which registry weights are on this machine (nothing downloaded or hashed); a missing one only warns:
    most runs need none, and each is fetched on first use where there is network."""
    from avgen.weights import REGISTRY, locate, weights_dir

    missing = [name for name, entry in REGISTRY.items() if locate(entry) is None]
    present = len(REGISTRY) - len(missing)
    if not missing:
        return Check("weights", "ok", f"all {present} registry weights present ({weights_dir()})")
    return Check(
        "weights",
        "warn",
        f"{present}/{len(REGISTRY)} present; missing {', '.join(missing)} -> fetched "
        "on first use, or ahead of time (offline nodes): make weights WHICH=<name>",
    )


def run_checks(store: Path, outputs: Path) -> list[Check]:
    imports = check_imports()
    checks = [check_python(), imports, check_versions(), check_pip()]
    if imports.status == "FAIL":
        return checks
    return checks + [
        check_jit(),
        check_media(),
        check_folder("store", store, must_exist=True, hint="make data"),
        check_folder("outputs", outputs),
        check_weights(),
        check_gpu(),
    ]


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.name:<{width}}  {c.status:<4}  {c.detail}" for c in checks)
