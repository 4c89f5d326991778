"""`avgen compare [dataset_name=...]` (`make compare DATASET=...`): every run's metrics side by side, offline.

Reads `<outputs>/*/metrics.json` (or the run's `eval/metrics.json` where `avgen eval` re-scored it), the
per-sample counts beside them and each run's `logs/metrics.csv`; writes `<outputs>/compare/<dataset>.md`
with PNG plots (`avgen.evaluation.comparison` says what is in them), and `<dataset>.html`: the same with
the runs' sample videos side by side (`avgen.evaluation.html_report`).
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from avgen.config import load_config
from avgen.evaluation.comparison import load_runs, report
from avgen.evaluation.html_report import html_page
from avgen.suite import is_registered, run_names
from avgen.utils.io import write_text


def select(rows: list[dict], dataset: str, runs: Any, exclude: list[str]) -> tuple[list[dict], list[str], str]:
    """(the rows of `dataset` to report, the run folders left out, why): `runs` is "registry", "all" or a list
    of globs over run folder names; `exclude` globs always leave runs out."""
    mine = [r for r in rows if r["dataset"] == dataset]
    if runs == "registry":
        names = run_names(dataset)
        keep = (lambda name: True) if names is None else (lambda name: is_registered(name, names))  # noqa: E731
        rule = f"not in configs/suite/{dataset}.yaml; `make compare RUNS='*'` shows every run"
    elif runs == "all":
        keep, rule = (lambda name: True), "all runs"  # noqa: E731
    else:
        globs = [runs] if isinstance(runs, str) else list(runs)
        keep, rule = (lambda name: any(fnmatch(name, g) for g in globs)), f"not matching {', '.join(globs)}"  # noqa: E731
    excluded = lambda name: any(fnmatch(name, g) for g in exclude)  # noqa: E731
    base = lambda r: r["run"].split(" (", 1)[0]  # noqa: E731 - an MMDisCo run's no-joint row follows its run
    chosen = [r for r in mine if keep(base(r)) and not excluded(base(r))]
    left_out = sorted({base(r) for r in mine} - {base(r) for r in chosen})
    if exclude and any(excluded(name) for name in left_out):
        rule += f"; excluded: {', '.join(exclude)}"
    return chosen, left_out, rule


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
        chosen, left_out, rule = select(rows, dataset, cfg.runs, list(cfg.exclude))
        text, columns, plots, runs = report(dataset, chosen, out, label)
        if left_out:
            text += f"\n**Runs left out** ({rule}): {', '.join(sorted(left_out))}.\n"
        write_text(out / f"{label}.md", text)
        write_text(out / f"{label}.html", html_page(f"avgen: {label}", text, runs, columns, out))
        print(f"{out / f'{label}.md'} (and .html): {len(columns)} metrics, plots: {', '.join(plots)}")
        if cfg.wandb.log:
            from avgen.evaluation.differences import paired_differences
            from avgen.evaluation.wandb_compare import log_comparison

            w = cfg.wandb
            folder = log_comparison(
                dataset, runs, columns, paired_differences(runs), out, w.project, w.entity, w.offline
            )
            print(f"W&B: compare/metrics, compare/paired, compare/samples logged in group {dataset} ({folder})")
    return 0
