"""Numba's on-disk JIT cache, safe for processes that start together.

librosa compiles its numba functions with `cache=True`, which by default writes the cache next to its own
sources in site-packages. When several processes compile one function at once on a cold cache, the index
and the data file of that function can come from different processes, and every later process that loads
the pair crashes natively (numba issue 10128). This project starts exactly such processes: prepare workers,
DDP ranks launched together by torchrun/srun, evaluations side by side.

So every avgen command (`avgen.cli.main`, before it imports anything that imports librosa) points numba at a
cache directory the project owns
(`~/.cache/avgen/numba/<key>`, or `$AVGEN_CACHE_DIR/numba/<key>`), keyed by the numba, llvmlite, librosa and
Python versions and the host CPU (numba's cached code is only valid for those). That directory is filled
once, by a child process compiling every JIT function on the project's paths into a private folder, which
is then renamed into place; a file lock makes processes that start together wait for one compile instead of
racing. After that, processes only read the cache. Cost: one compile per machine and library version,
about 20-40 s on 2 cores, paid by the first avgen process (progress is printed).

Opt out with `AVGEN_NUMBA_CACHE=off`; a `NUMBA_CACHE_DIR` set by the user is left alone. `avgen doctor`
checks the cache in a child process, so a corrupted one is reported with its path, not as a crash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from avgen.utils.io import cache_root as avgen_cache

READY = "READY"  # written last into a complete cache folder
_CHILD_FLAG = "AVGEN_NUMBA_CACHE_CHILD"


def cache_root() -> Path:
    return avgen_cache() / "numba"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def cache_key() -> str:
    """What numba's cached machine code depends on: library versions, Python, and the host CPU."""
    import platform

    from llvmlite import binding

    cpu = f"{binding.get_host_cpu_name()}:{binding.get_host_cpu_features().flatten()}"
    parts = [
        f"numba{_version('numba')}",
        f"librosa{_version('librosa')}",
        f"llvmlite{_version('llvmlite')}",
        f"py{sys.version_info.major}{sys.version_info.minor}",
        platform.machine(),
    ]
    return "-".join(parts) + "-" + hashlib.sha256(cpu.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    return cache_root() / cache_key()


def warm_up() -> None:
    """Compile every numba function the project's paths call, with the argument types they use (float32
    waveforms, float64 log-mels), so that later processes never compile and so never write the cache."""
    import numpy as np

    from avgen.data.representations import AudioLogMel
    from avgen.decoding.export import GriffinLim
    from avgen.metrics.av_align import onset_times
    from avgen.metrics.beats import beat_times
    from avgen.metrics.synthetic import SyntheticProbe

    sr = 16000
    t = np.arange(sr * 2) / sr
    wav = (np.sin(2 * np.pi * 440 * t) * (np.floor(t * 4) % 2)).astype(np.float32)  # tone bursts at 2 Hz
    onset_times(wav, sr)
    beat_times(wav, sr)
    mel = AudioLogMel(sr, n_mels=16, n_fft=1024, hop_length=1000)
    spec = mel.normalise(mel.mel_power(wav))
    SyntheticProbe(video_fps=8, sample_rate=sr, hop_length=1000, n_mels=16).audio_onsets(spec)
    GriffinLim(mel, n_iter=2)(spec)


def _compile_into(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), _CHILD_FLAG: "1", "OMP_NUM_THREADS": "1"}
    code = "from avgen.utils.numba_cache import warm_up; warm_up()"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def describe_failure(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode < 0:
        import signal

        return f"crashed with {signal.Signals(-proc.returncode).name}"
    tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no message"]
    return f"exited with {proc.returncode}: {tail[0]}"


def _fill(target: Path) -> bool:
    """Compile into a private folder, then publish it by renaming (atomic): a reader sees all or nothing."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes started together wait here for the first one's compile
        if (target / READY).is_file():
            return True
        print(
            f"avgen: compiling librosa's numba functions once into {target} (about 30 s)...",
            file=sys.stderr,
            flush=True,
        )
        scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
        proc = _compile_into(scratch)
        if proc.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            print(
                f"avgen: warning: the numba warm-up {describe_failure(proc)}; this process uses a private cache "
                f"(run `avgen doctor`)",
                file=sys.stderr,
            )
            return False
        (scratch / READY).write_text(cache_key() + "\n")
        if target.exists():  # a stale, incomplete folder (no READY): replaced whole
            shutil.rmtree(target)
        os.rename(scratch, target)
    return True


def configure() -> Path | None:
    """Point numba at the project's cache (filled first if needed); None where the user manages it."""
    if os.environ.get(_CHILD_FLAG) or os.environ.get("AVGEN_NUMBA_CACHE", "").lower() in {"off", "0", "false"}:
        return None
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    try:
        target = cache_dir()
    except ImportError:  # no numba/llvmlite installed: nothing to protect (`avgen doctor` reports the import)
        return None
    try:
        ready = (target / READY).is_file() or _fill(target)
    except OSError as e:  # an unwritable home: still never share a cache between processes
        print(f"avgen: warning: numba cache not usable ({e}); this process uses a private one", file=sys.stderr)
        ready = False
    if not ready:
        target = Path(tempfile.mkdtemp(prefix="avgen-numba-"))
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    if "numba" in sys.modules:  # imported before avgen: numba reads the variable again
        from numba.core import config

        config.reload_config()
    return target
