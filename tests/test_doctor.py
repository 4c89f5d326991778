"""`avgen doctor`: the table, versions against the lock, and a corrupted numba cache caught in a child."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from avgen.utils import doctor, numba_cache


def test_versions_against_a_lock(tmp_path):
    import numpy

    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# header\nnumpy=={numpy.__version__}\n")
    assert doctor.check_versions(lock).status == "ok"
    lock.write_text("numpy==0.0.1\nno_such_package==1.0\n")
    row = doctor.check_versions(lock)
    assert row.status == "warn" and "numpy" in row.detail and "lock 0.0.1" in row.detail
    assert "no-such-package missing" in row.detail


def test_repository_lock_pins_what_is_installed():
    """The venv the tests run in was installed from requirements.lock (make setup)."""
    pins = doctor.read_lock()
    assert len(pins) > 50 and "torch" not in pins and "librosa" in pins
    assert doctor.check_versions().status == "ok", doctor.check_versions().detail


def test_a_crash_is_named_with_its_signal():
    crashed = subprocess.CompletedProcess([], returncode=-11, stderr="")
    assert numba_cache.describe_failure(crashed) == "crashed with SIGSEGV"
    failed = subprocess.CompletedProcess([], returncode=1, stderr="Traceback\nValueError: bad pickle\n")
    assert numba_cache.describe_failure(failed) == "exited with 1: ValueError: bad pickle"


@pytest.mark.slow  # whole-CLI run, subprocess or compile: the slow tier
def test_doctor_reports_a_corrupted_cache_and_fixes_it(tmp_path):
    """A copy of this process's warm cache with every data file overwritten: the JIT row FAILs in the
    child, the exit code is 1, the fix removes the folder, and the next process rebuilds nothing broken."""
    target = tmp_path / "numba" / numba_cache.cache_key()
    shutil.copytree(os.environ["NUMBA_CACHE_DIR"], target)
    for data in target.rglob("*.nbc"):
        data.write_bytes(b"not numba's data")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"AVGEN_CACHE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "avgen.cli.main", "doctor", f"store={tmp_path}", f"outputs={tmp_path / 'out'}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("numba JIT"))
    assert "FAIL" in row and "corrupted" in row and str(target) in row
    assert "1 check(s) failed" in proc.stdout
    proc = subprocess.run(cmd + ["fix=true"], env=env, capture_output=True, text=True, timeout=600)
    assert f"removed {target}" in proc.stdout and not target.exists()
