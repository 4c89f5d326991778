"""Write the README's measured numbers from a run's metrics.json (never typed by hand):
`python scripts/readme_numbers.py outputs/cmmd_synthetic_quick/metrics.json README.md` (`make readme-numbers`).
Replaces what stands between the `<!-- measured:begin ... -->` and `<!-- measured:end -->` lines, and the
experiment table between `<!-- experiments:begin ... -->` and `<!-- experiments:end -->` (from the suite
registries, configs/suite/). With `--tests FAST_LOG SLOW_LOG README.md` (`make readme-tests`), the test tiers'
counts and times from the two pytest logs, between `<!-- tests:begin ... -->` and `<!-- tests:end -->`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from avgen.evaluation.report import headline


def measured_text(m: dict) -> str:
    threads = (
        f", {m['torch_threads']} torch thread{'s' if m.get('torch_threads', 1) != 1 else ''}"
        if "torch_threads" in m
        else ""
    )
    keys = ("temporal_f1", "lag_contrast", "semantic_agreement", "v2a_temporal_f1", "a2v_temporal_f1")
    scores = "; ".join(headline(m, k) for k in keys if k in m)  # as the run's own done: line says them
    plural = "s" if m.get("cpu_cores") != 1 else ""
    cores = f"{m['cpu_cores']} CPU core{plural}" if "cpu_cores" in m else "CPU cores not recorded"
    return (
        f"Last measured run (`{m.get('experiment', '?')}`, {cores}{threads}): "
        f"{m['steps']} steps in {m['train_seconds'] / 60:.1f} min of training; on {m.get('num_samples', '?')} "
        f"joint samples (v2a_/a2v_: test clips given one modality), {scores} (95% intervals and chance floors; "
        "docs/metrics.md)."
    )


def pytest_summary(log: str) -> tuple[int, float]:
    """(tests passed, seconds) from the last summary line of a pytest log."""
    found = re.findall(r"(\d+) passed.* in ([\d.]+)s", log)
    if not found:
        raise ValueError("no pytest summary line ('N passed ... in Xs') in the log")
    passed, seconds = found[-1]
    return int(passed), float(seconds)


def tests_text(fast_log: str, slow_log: str) -> str:
    (fast, fast_s), (slow, slow_s) = pytest_summary(fast_log), pytest_summary(slow_log)
    return (
        f"`make test` (the fast tier: units, frozen values, round trips, short in-process runs) ran {fast} tests in "
        f"{fast_s:.0f} s, `make test-slow` (whole-CLI runs, DDP, kill-and-resume, preemption, smoke-ood, the "
        f"browser and coverage checks) {slow} tests in {slow_s / 60:.1f} min, on the 2-core dev machine "
        "(`make readme-tests` rewrites these figures)."
    )


def update(readme: Path, text: str, block: str = "measured") -> None:
    content = readme.read_text()
    pattern = re.compile(rf"(<!-- {block}:begin[^\n]*-->\n).*?(<!-- {block}:end -->)", re.S)
    if not pattern.search(content):
        raise ValueError(f"{readme} has no <!-- {block}:begin --> ... <!-- {block}:end --> block")
    readme.write_text(pattern.sub(lambda match: match.group(1) + text + "\n" + match.group(2), content, count=1))


if __name__ == "__main__":
    if sys.argv[1] == "--tests":
        fast_log, slow_log, readme_path = (Path(a) for a in sys.argv[2:5])
        update(readme_path, tests_text(fast_log.read_text(), slow_log.read_text()), "tests")
        print(f"{readme_path}: test counts and times from {fast_log} and {slow_log}")
        sys.exit(0)
    metrics_path, readme_path = Path(sys.argv[1]), Path(sys.argv[2])
    if not metrics_path.is_file():
        sys.exit(f"{metrics_path} does not exist: train the run first (make train)")
    update(readme_path, measured_text(json.loads(metrics_path.read_text())))
    from avgen.suite import experiment_table

    update(readme_path, experiment_table(), "experiments")
    print(f"{readme_path}: measured numbers from {metrics_path}, the experiment table from configs/suite/")
