"""Write the README's measured numbers from a run's metrics.json (never typed by hand):
`python scripts/readme_numbers.py outputs/cmmd_synthetic/metrics.json README.md` (`make readme-numbers`).
Replaces what stands between the `<!-- measured:begin ... -->` and `<!-- measured:end -->` lines, and the
experiment table between `<!-- experiments:begin ... -->` and `<!-- experiments:end -->` (from the suite
registries, configs/suite/)."""

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


def update(readme: Path, text: str, block: str = "measured") -> None:
    content = readme.read_text()
    pattern = re.compile(rf"(<!-- {block}:begin[^\n]*-->\n).*?(<!-- {block}:end -->)", re.S)
    if not pattern.search(content):
        raise ValueError(f"{readme} has no <!-- {block}:begin --> ... <!-- {block}:end --> block")
    readme.write_text(pattern.sub(lambda match: match.group(1) + text + "\n" + match.group(2), content, count=1))


if __name__ == "__main__":
    metrics_path, readme_path = Path(sys.argv[1]), Path(sys.argv[2])
    if not metrics_path.is_file():
        sys.exit(f"{metrics_path} does not exist: train the run first (make train)")
    update(readme_path, measured_text(json.loads(metrics_path.read_text())))
    from avgen.suite import experiment_table

    update(readme_path, experiment_table(), "experiments")
    print(f"{readme_path}: measured numbers from {metrics_path}, the experiment table from configs/suite/")
