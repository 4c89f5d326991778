"""The README's measured numbers are written from a run's metrics.json by a script, never by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "readme_numbers.py"


def test_readme_block_is_rewritten_from_metrics(tmp_path):
    metrics = {
        "experiment": "cmmd_synthetic",
        "steps": 1600,
        "train_seconds": 618.0,
        "cpu_cores": 2,
        "torch_threads": 1,
        "num_samples": 128,
        "temporal_f1": 0.424,
        "a2v_temporal_f1": 0.163,
        "intervals": {"temporal_f1": [0.381, 0.468], "a2v_temporal_f1": [0.073, 0.262]},
        "calibration": {"temporal_f1": {"floor": 0.305}, "a2v_temporal_f1": {"floor": 0.221}},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- measured:begin (by script) -->\nstale 0.60\n<!-- measured:end -->\n"
        "<!-- experiments:begin -->\nold table\n<!-- experiments:end -->\nrest\n"
    )
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "metrics.json"), str(readme)], check=True)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "1600 steps in 10.3 min" in text and "2 CPU cores, 1 torch thread" in text
    assert "temporal_f1 0.424 [0.381, 0.468] (floor 0.305)" in text
    assert "a2v_temporal_f1 0.163 [0.073, 0.262] (floor 0.221, not resolved above it)" in text  # said plainly
    assert "old table" not in text and "| `cmmd_synthetic` | synthetic |" in text


def test_the_readme_table_lists_every_registered_experiment():
    """The committed README holds the table the registry generates (`make readme-numbers` rewrites it)."""
    from avgen.suite import experiment_table

    assert experiment_table() in (Path(__file__).parents[1] / "README.md").read_text()


def test_the_repository_readme_has_the_block():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    assert "<!-- measured:begin" in text and "<!-- measured:end -->" in text


def test_the_test_figures_come_from_the_pytest_logs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- tests:begin -->\nold\n<!-- tests:end -->\nb\n")
    fast, slow = tmp_path / "fast.log", tmp_path / "slow.log"
    fast.write_text("....\n378 passed, 1 skipped, 40 deselected, 15 warnings in 143.16s (0:02:23)\n")
    slow.write_text("..\n41 passed, 379 deselected in 812.50s (0:13:32)\n")
    subprocess.run([sys.executable, str(SCRIPT), "--tests", str(fast), str(slow), str(readme)], check=True)
    text = readme.read_text()
    assert "ran 378 tests in 143 s" in text and "41 tests in 13.5 min" in text and "old" not in text
