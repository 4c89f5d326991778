"""`avgen compare [dataset_name=...]` (`make compare DATASET=...`): every run's metrics side by side, offline.

Reads `<outputs>/*/metrics.json` (written by `avgen train` after training; `eval/metrics.json`, written by
`avgen eval`, takes precedence where present) and each run's `logs/metrics.csv`,
and writes `<outputs>/compare/<dataset>.md` (rows: runs; columns: the metrics, parameters, training time,
ms per function evaluation) with PNG plots: one bar chart per metric and the training-loss curves. An
MMDisCo run also gives the row of its frozen bases sampled without guidance ("no joint"): the independent
bases, scored from the same seed. Each metric is followed by its chance level, the run's own pairs shuffled.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from avgen.config import load_config
from avgen.evaluation.report import INFO, METRICS, RUN_INFO
from avgen.utils.io import write_text



def load_runs(outputs: Path) -> list[dict[str, Any]]:
    """One row per run (plus a no-joint row per MMDisCo run), each with its name, dataset and numbers."""
    rows = []
    for path in sorted(outputs.glob("*/metrics.json")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"compare: skipping {path}: {e}")
            continue
        rescored = path.parent / "eval" / "metrics.json"
        if rescored.is_file():  # `avgen eval` re-scored the trained run: its metrics replace the training-time ones
            metrics = {**metrics, **json.loads(rescored.read_text())}
        run = path.parent.name
        row = {"run": run, "dir": path.parent, "dataset": metrics.get("dataset", "unknown"),
               **metrics, "method": f"{metrics.get('method', '')} ({metrics.get('variant', '')})"}
        rows.append(row)
        no_joint = {k[len("no_joint_"):]: v for k, v in metrics.items() if k.startswith("no_joint_")}
        seen = [{k: r.get(k) for k in no_joint} for r in rows if r["method"].startswith("independent bases")]
        if no_joint and no_joint not in seen:  # runs over the same bases and seed share one row
            rows.append({"run": f"{run} (no joint: independent bases)", "dir": None, "dataset": row["dataset"],
                         **no_joint, "method": "independent bases, guidance off"})
    return rows


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    present = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    extra = sorted(k for k in present - set(METRICS) - RUN_INFO if not k.endswith("_shuffled")
                   and not k.startswith("no_joint_"))
    return [k for k in METRICS if k in present] + extra


def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key == "parameters":
        return f"{value / 1e6:.2f}M"
    if key == "train_seconds":
        return f"{value / 60:.1f} min"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def markdown(dataset: str, rows: list[dict[str, Any]], columns: list[str], plots: list[str]) -> str:
    header = ["run", "method", *columns, *INFO]
    lines = [f"# {dataset}: {len(rows)} runs side by side", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    def cell(r: dict[str, Any], k: str) -> str:
        shuffled = r.get(f"{k}_shuffled")
        return _fmt(r.get(k), k) + (f" ({shuffled:.3f})" if isinstance(shuffled, (int, float)) else "")

    for r in rows:
        lines.append("| " + " | ".join([r["run"], r["method"], *(cell(r, k) for k in columns),
                                         *(_fmt(r.get(k), k) for k in INFO)]) + " |")
    if any(f"{k}_shuffled" in r for r in rows for k in columns):
        lines += ["", "(x): the same metric on the run's own pairs shuffled (audio of another sample): its chance level."]
    lines += ["", "ms_per_fe: sampling time per denoiser call at the evaluation batch size (guided calls included).",
              "", *(f"![{p}]({p})" for p in plots), ""]
    return "\n".join(lines)


def training_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return [], []
    steps, losses = [], []
    with open(path) as f:
        for r in csv.DictReader(f):
            if r.get("train/loss"):
                steps.append(int(r["step"]))
                losses.append(float(r["train/loss"]))
    return steps, losses


def vocoder_table(rows: list[dict[str, Any]]) -> str:
    """Vocoder runs apart from the generative models: their log-mel error against Griffin-Lim's on the same mels."""
    if not rows:
        return ""
    lines = ["## Vocoders", "", "log-mel L1 (normalised units) of re-synthesised test segments; lower is better", "",
             "| run | mel_l1 | Griffin-Lim on the same mels | parameters | train_seconds | steps |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {_fmt(r.get('mel_l1'), 'mel_l1')} | {_fmt(r.get('mel_l1_griffin_lim'), 'mel_l1')} | "
              f"{_fmt(r.get('parameters'), 'parameters')} | {_fmt(r.get('train_seconds'), 'train_seconds')} | "
              f"{_fmt(r.get('steps'), 'steps')} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(dataset: str, rows: list[dict[str, Any]], columns: list[str], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    if columns:
        fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 0.45 * len(rows) + 1.5), squeeze=False)
        ys = list(range(len(rows)))  # every panel has every run on the same row; a missing metric has no bar
        for ax, key in zip(axes[0], columns):
            values = [r[key] if isinstance(r.get(key), (int, float)) else float("nan") for r in rows]
            ax.barh(ys, values, color="tab:blue")
            chance = [(i, r[f"{key}_shuffled"]) for i, r in enumerate(rows)
                      if isinstance(r.get(f"{key}_shuffled"), (int, float))]
            if chance:  # each run's chance level: its own pairs shuffled
                ax.scatter([v for _, v in chance], [i for i, _ in chance], marker="|", s=300, color="black", zorder=3)
            ax.set_title(key, fontsize=9)
            ax.set_yticks(ys, [r["run"] for r in rows] if ax is axes[0][0] else [""] * len(rows))
            ax.tick_params(labelsize=7)
            ax.invert_yaxis()
        fig.tight_layout()
        names.append(f"{dataset}_metrics.png")
        fig.savefig(out / names[-1], dpi=110)
        plt.close(fig)
    curves = [(r["run"], *training_curve(r["dir"])) for r in rows if r["dir"] is not None]
    curves = [c for c in curves if c[1]]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, steps, losses in curves:
            ax.plot(steps, losses, label=name)
        ax.set(xlabel="step", ylabel="train/loss", yscale="log", title=f"{dataset}: training loss")
        ax.legend(fontsize=7)
        fig.tight_layout()
        names.append(f"{dataset}_curves.png")
        fig.savefig(out / names[-1], dpi=110)
        plt.close(fig)
    return names


def run(overrides: list[str]) -> int:
    cfg = load_config("compare", overrides)
    outputs = Path(cfg.paths.output_dir)
    rows = load_runs(outputs)
    datasets = sorted({r["dataset"] for r in rows})
    if cfg.dataset_name:
        rows = [r for r in rows if r["dataset"] == cfg.dataset_name]
        datasets = [cfg.dataset_name]
    if not rows:
        raise FileNotFoundError(f"no run with metrics.json for dataset {cfg.dataset_name or 'any'} under {outputs}/*/; "
                                "train some first (make train EXP=...)")
    out = outputs / "compare"
    out.mkdir(parents=True, exist_ok=True)
    for dataset in datasets:
        subset = [r for r in rows if r["dataset"] == dataset and not r["method"].startswith("vocoder")]
        vocoders = [r for r in rows if r["dataset"] == dataset and r["method"].startswith("vocoder")]
        columns = metric_columns(subset)
        plots = plot(dataset, subset, columns, out)
        write_text(out / f"{dataset}.md", markdown(dataset, subset, columns, plots) + vocoder_table(vocoders))
        print(f"{out / f'{dataset}.md'}: {len(subset)} runs, {len(columns)} metrics, plots: {', '.join(plots)}")
    return 0
