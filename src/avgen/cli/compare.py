"""`avgen compare [dataset_name=...]` (`make compare DATASET=...`): every run's metrics side by side, offline.

Reads `<outputs>/*/metrics.json` (or the run's `eval/metrics.json` where `avgen eval` re-scored it), the
per-sample counts beside them and each run's `logs/metrics.csv`; writes `<outputs>/compare/<dataset>.md`
with PNG plots (`avgen.evaluation.comparison` says what is in them), and `<dataset>.html`: the same with
the runs' sample videos side by side (`avgen.evaluation.html_report`).
"""

from __future__ import annotations

from pathlib import Path

from avgen.config import load_config
from avgen.evaluation.comparison import load_runs, report
from avgen.evaluation.html_report import html_page
from avgen.utils.io import write_text


def run(overrides: list[str]) -> int:
    cfg = load_config("compare", overrides)
    outputs = Path(cfg.paths.output_dir)
    rows = load_runs(outputs, cfg.scores_from, cfg.only_rescored)
    datasets = sorted({r["dataset"] for r in rows})
    if cfg.dataset_name:
        rows = [r for r in rows if r["dataset"] == cfg.dataset_name]
        datasets = [cfg.dataset_name]
    if not rows:
        raise FileNotFoundError(
            f"no run with metrics.json for dataset {cfg.dataset_name or 'any'} under {outputs}/*/; "
            "train some first (make train EXP=...)"
        )
    out = outputs / "compare"
    out.mkdir(parents=True, exist_ok=True)
    for dataset in datasets:
        label = f"{dataset}_{cfg.report_name}" if cfg.report_name else dataset
        text, columns, plots, runs = report(dataset, rows, out, label)
        write_text(out / f"{label}.md", text)
        write_text(out / f"{label}.html", html_page(f"avgen: {label}", text, runs, columns, out))
        print(f"{out / f'{label}.md'} (and .html): {len(columns)} metrics, plots: {', '.join(plots)}")
    return 0
