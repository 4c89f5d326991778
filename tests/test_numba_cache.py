"""numba's JIT cache under processes started together (utils/numba_cache.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from avgen.utils import numba_cache

# An avgen command (it configures numba's cache where it starts, as avgen.cli.main does), then the project's
# own librosa paths: AV-Align onsets (peak picking), beat tracking, the synthetic metric.
CALL_METRICS = """
from avgen.utils.numba_cache import configure
configure()
import numpy as np
from avgen.metrics.av_align import onset_times
from avgen.metrics.beats import beat_times
wav = np.random.default_rng(0).normal(size=32000).astype(np.float32)
onset_times(wav, 16000); beat_times(wav, 16000)
"""


def start(code: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def clean_env(cache: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"NUMBA_CACHE_DIR", "AVGEN_NUMBA_CACHE"}}
    return {**env, "AVGEN_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", **extra}


def test_cache_key_names_the_versions_and_cpu():
    key = numba_cache.cache_key()
    assert key.startswith("numba") and "librosa" in key and f"py{sys.version_info.major}" in key
    assert key == numba_cache.cache_key()


def test_user_cache_dir_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert numba_cache.configure() == tmp_path / "mine"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


@pytest.mark.slow
def test_processes_started_together_on_a_cold_cache_never_crash(tmp_path):
    """Four processes at once on a cold cache, then a fifth, three times over: every one exits 0.
    (Without the project's cache handling, 6 of 15 such processes crashed natively.)"""
    for trial in range(3):
        env = clean_env(tmp_path / f"trial{trial}")
        together = [start(CALL_METRICS, env) for _ in range(4)]
        results = [(p.wait(timeout=600), p.stderr.read()) for p in together]
        fifth = start(CALL_METRICS, env)
        results.append((fifth.wait(timeout=600), fifth.stderr.read()))
        assert [rc for rc, _ in results] == [0] * 5, [err[-2000:] for rc, err in results if rc]
        folders = [d for d in (tmp_path / f"trial{trial}" / "numba").iterdir() if d.is_dir()]
        assert len(folders) == 1 and (folders[0] / numba_cache.READY).is_file()  # one compile, published whole
        assert not list((tmp_path / f"trial{trial}" / "numba").glob("*.tmp-*"))


@pytest.mark.slow
def test_a_warm_cache_is_only_read(tmp_path):
    env = clean_env(tmp_path)
    assert start(CALL_METRICS, env).wait(timeout=600) == 0
    folder = next(d for d in (tmp_path / "numba").iterdir() if d.is_dir())
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert start(CALL_METRICS + "\nfrom avgen.utils.numba_cache import warm_up; warm_up()", env).wait(timeout=600) == 0
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
