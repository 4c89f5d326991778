"""Runs side by side (`avgen compare`): every metric with its interval, floor, ceiling and normalised score;
paired differences between runs scored on the same sample indices, marked resolved or not; the protocol
stated once, and metrics scored under different protocols named and drawn apart (hatched, under a warning).

Each row takes all its scores from one file: `eval/metrics.json` where `avgen eval` re-scored the run, else
the training run's `metrics.json` (the row says which); only what describes the run (parameters, training
time, method) comes from training. An MMDisCo run also gives the row of its bases without guidance
("no joint"), scored on the same seeds and noise.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from itertools import combinations
from pathlib import Path
from typing import Any

from avgen.evaluation.differences import GENERAL_PROTOCOL, control_differences, paired_differences, protocol_of
from avgen.evaluation.report import INFO, METRICS, RUN_INFO
from avgen.metrics.seeds import MIN_SEEDS, paired_seed_difference, seed_interval

NESTED = ("intervals", "calibration", "protocol", "paired")
DESCRIBES = {"dataset", "method", "variant", "experiment", "modalities", "upstream", *RUN_INFO} - {
    "num_samples",
    "sampling_seconds",
    "sampler_steps",
    "eval_seconds",
    "ms_per_fe",
}
# What every score of a row depends on, beside a metric's own protocol entry. The sampler and its steps are
# not among them: they are part of what is compared (a method's own solver), shown per row.
SAMPLING = ("sampler", "sampler_steps", "sampling_seconds", "peak_memory_gb")


def load_runs(outputs: Path, scores_from: str = "eval", only_rescored: bool = False) -> list[dict[str, Any]]:
    """One row per run (plus a no-joint row per MMDisCo run), each with its name, dataset, numbers and the
    file its scores come from: `<run>/<scores_from>/metrics.json` where a run was re-scored (`avgen eval`,
    or `avgen eval into=<folder>` with `scores_from=<folder>`), else the training run's own; with
    `only_rescored`, runs without that re-scoring are left out."""
    rows = []
    for path in sorted(outputs.glob("*/metrics.json")):
        try:
            trained = json.loads(path.read_text())
            rescored_path = path.parent / scores_from / "metrics.json"
            rescored = json.loads(rescored_path.read_text()) if rescored_path.is_file() else None
        except (OSError, json.JSONDecodeError) as e:
            print(f"compare: skipping {path}: {e}")
            continue
        if rescored is not None:  # every score from the re-scoring; only the run's description from training
            metrics = {**{k: v for k, v in trained.items() if k in DESCRIBES}, **rescored}
            source, scored_dir = f"{scores_from}/metrics.json", path.parent / scores_from
        elif only_rescored:
            continue
        else:
            metrics, source, scored_dir = trained, "metrics.json", path.parent
        run = path.parent.name
        metrics["variant"] = _variant_from_config(path.parent, metrics.get("variant"))
        row = {
            "run": run,
            "dir": path.parent,
            "source": source,
            "per_sample": scored_dir / "per_sample.json",
            "distance_features": scored_dir / "distance_features.pt",
            "dataset": metrics.get("dataset", "unknown"),
            **metrics,
            "method": f"{metrics.get('method', '')} ({metrics.get('variant', '')})",
        }
        rows.append(row)
        no_joint = _no_joint(metrics)
        seen = [
            {k: r.get(k) for k in no_joint if k not in NESTED}
            for r in rows
            if r["method"].startswith("independent bases")
        ]
        if no_joint and {k: v for k, v in no_joint.items() if k not in NESTED} not in seen:
            # runs over the same bases and seed share one row
            rows.append(
                {
                    "run": f"{run} (no joint: independent bases)",
                    "dir": None,
                    "source": source,
                    "per_sample": None,
                    "distance_features": None,
                    "dataset": row["dataset"],
                    **no_joint,
                    **{k: metrics[k] for k in (*GENERAL_PROTOCOL, *SAMPLING) if k in metrics},
                    "method": "independent bases, guidance off",
                }
            )
    return rows


def _variant_from_config(run_dir: Path, recorded: Any) -> Any:
    """The run's variant as its method labels it today, from its saved config (runs scored before a setting
    was named get the label of what they trained with); the recorded one where the config cannot be read."""
    from omegaconf import OmegaConf

    from avgen.evaluation.report import variant

    try:
        return variant(OmegaConf.load(run_dir / "config.yaml"))
    except Exception:  # no config, or one of a method this checkout no longer has
        return recorded


def _control_table(differences: list[dict[str, Any]]) -> list[str]:
    if not differences:
        return []
    lines = _section(
        "Against its control",
        "each run minus its control (configs/suite: `control`), the same training at equal steps without the "
        "part under test (for CMMD: eta = 0), so the difference is that part's effect: per sample on the "
        "same indices, and across training seeds ((seeds) rows: 95% t interval over the seeds both have).",
        ["metric", "run", "control", "run - control", "interval", "resolved"],
    )
    return lines + _difference_rows(differences)


def _difference_rows(differences: list[dict[str, Any]]) -> list[str]:
    """| metric | a | b | a - b | interval | resolved | rows of paired differences."""
    rows = []
    for d in differences:
        lo, hi = d["interval"]
        rows.append(
            f"| {d['metric']} | {d['a']} | {d['b']} | {d['difference']:+.3f} | [{lo:+.3f}, {hi:+.3f}] | "
            f"{'yes' if d['resolved'] else 'no'} |"
        )
    return rows


def _no_joint(metrics: dict[str, Any]) -> dict[str, Any]:
    """The no-joint scores of an MMDisCo run, under the names the guided ones have."""
    p = "no_joint_"
    out: dict[str, Any] = {k[len(p) :]: v for k, v in metrics.items() if k.startswith(p)}
    if not out:
        return out
    for section in ("intervals", "calibration", "protocol"):
        inner = {k[len(p) :]: v for k, v in metrics.get(section, {}).items() if k.startswith(p)}
        if inner:
            out[section] = inner
    return out


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    present = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    extra = sorted(
        k for k in present - set(METRICS) - RUN_INFO if not k.endswith("_shuffled") and not k.startswith("no_joint_")
    )
    return [k for k in METRICS if k in present] + extra


def protocol_conflicts(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, list[str]]:
    """metric -> how the runs' protocols differ (empty where every run scoring it shares one)."""
    conflicts = {}
    for metric in columns:
        scored = [r for r in rows if isinstance(r.get(metric), (int, float))]
        protocols = [protocol_of(r, metric) for r in scored]
        keys = sorted({k for p in protocols for k in p if len({json.dumps(q.get(k)) for q in protocols}) > 1})
        if keys:
            conflicts[metric] = [
                f"{r['run']}: " + ", ".join(f"{k}={p.get(k)}" for k in keys) for r, p in zip(scored, protocols)
            ]
    return conflicts


def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key == "parameters":
        return f"{value / 1e6:.2f}M"
    if key == "train_seconds":
        return f"{value / 60:.1f} min"
    if key == "compute_ratio":
        return f"x{value:.2f}"
    if key == "samples_per_s":
        return f"{value:.2f}"
    if key == "peak_memory_gb":
        return f"{value:.2f} GB"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _cell(r: dict[str, Any], k: str) -> str:
    text = _fmt(r.get(k), k)
    interval = r.get("intervals", {}).get(k)
    if text and interval:
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    shuffled = r.get(f"{k}_shuffled")
    return text + (f" ({shuffled:.3f})" if isinstance(shuffled, (int, float)) else "")


def _protocol_lines(rows: list[dict[str, Any]], columns: list[str], conflicts: dict[str, list[str]]) -> list[str]:
    """The protocol stated once per group of metrics that share it (e.g. joint samples, v2a)."""
    groups: dict[str, list[str]] = {}
    for metric in columns:
        scored = [r for r in rows if isinstance(r.get(metric), (int, float))]
        if metric in conflicts or not scored:
            continue
        settings = {k: v for k, v in protocol_of(scored[0], metric).items() if v is not None}
        groups.setdefault(json.dumps(settings, sort_keys=True), []).append(metric)
    lines = []
    for settings, metrics in groups.items():
        text = ", ".join(f"{k} {v}" for k, v in sorted(json.loads(settings).items())) or "not recorded"
        lines.append(f"**Protocol** of {', '.join(metrics)}: {text}.")
    for metric, how in conflicts.items():
        lines.append(
            f"**Warning**: `{metric}` was scored under different protocols ({'; '.join(how)}): "
            "its values are not comparable (drawn hatched in the plots)."
        )
    return [part for line in lines for part in (line, "")][:-1]  # a paragraph each


def markdown(
    dataset: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    plots: list[str],
    conflicts: dict[str, list[str]] | None = None,
    paired: list[dict[str, Any]] | None = None,
) -> str:
    conflicts = conflicts or {}
    rows = [{**r, **sampling_figures(r)} for r in equal_compute(rows)]
    info = ["sampling", "nfe", "sampling_gflops_per_sample", "samples_per_s", "peak_memory_gb", *INFO]
    if any("compute_ratio" in r for r in rows):
        info += ["compute_ratio", "steps_at_equal_flops"]
    info = [k for k in info if any(r.get(k) is not None for r in rows)]  # no column that is blank throughout
    header = ["run", "method", *columns, *info, "scores from"]
    lines = [
        f"# {dataset}: {len(rows)} runs side by side",
        "",
        *_protocol_lines(rows, columns, conflicts),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    r["run"],
                    r["method"],
                    *(_cell(r, k) for k in columns),
                    *(_fmt(r.get(k), k) for k in info),
                    r.get("source", ""),
                ]
            )
            + " |"
        )
    if any(r.get("intervals") for r in rows):
        lines += ["", "[lo, hi]: 95% bootstrap interval over the scored samples."]
    if any(f"{k}_shuffled" in r for r in rows for k in columns):
        lines += [
            "",
            "(x): the same metric on the run's own pairs shuffled once (audio of another sample): the "
            "original chance level; the calibration table has the mean over many derangements.",
        ]
    lines += [
        "",
        "nfe: network function evaluations per generated sample, counted by the sampler, plus guidance's "
        "extra passes (bwd: a backward through the network; disc: a discriminator forward and input "
        "gradient; cfg: an unconditional pass); sampling_gflops_per_sample: their FLOPs, counted on the "
        "first batch. `evaluate.nfe=<n>` samples every run at about n evaluations.",
        "",
    ]
    lines += [
        "sampling: the run's solver and steps (part of the method, not of the protocol). samples_per_s: "
        "joint samples generated per second at the evaluation batch size; ms_per_fe: sampling time per "
        "denoiser call (guided calls included); peak_memory_gb: the evaluation's peak accelerator memory "
        "(on a CPU the process's peak resident memory)."
    ]
    if "compute_ratio" in info:
        lines += [
            "",
            "gflops_per_step / train_tflops: training compute counted by torch's FLOP counter (matmuls, "
            "convolutions, attention; forward and backward; an optimizer step counts every micro-batch on "
            "every rank). upstream_tflops: the compute that produced the run's starting point (the run it "
            "fine-tunes, its bases, its fake pairs); total_tflops = train + upstream. compute_ratio: "
            "total_tflops over the least of the runs shown; steps_at_equal_flops: the own steps that would "
            "bring this run's total to that least. Runs compare at equal compute when their ratios are near "
            "x1.00; blank: a part was not counted (named in the run's metrics.json `upstream`).",
        ]
    seeds = _seeds_table(rows, columns)
    if any(len({r["seed"] for r in g}) >= MIN_SEEDS for g in seed_groups(rows).values()):
        head = lines.index("| " + " | ".join(header) + " |")  # the headline goes before the per-run table
        lines[head:head] = [*seeds[1:], "", "## Runs", ""]
        seeds = []
    controls = _control_table(control_differences(rows, paired or [], columns))
    lines += controls + seeds + _calibration_table(rows, columns) + _paired_table(paired or [])
    lines += ["", *(f"![{p}]({p})" for p in plots), ""]
    return "\n".join(lines)


EXTRA_PASSES = {"guidance_backward": "bwd", "discriminator_gradient": "disc", "cfg_unconditional": "cfg"}


def sampling_figures(r: dict[str, Any]) -> dict[str, Any]:
    """The row's sampler as one cell, what a sample cost (network evaluations, and guidance's extra passes:
    backward through the network, discriminator gradients, unconditional CFG passes), samples per second."""
    out: dict[str, Any] = {}
    if r.get("sampler"):
        out["sampling"] = f"{r['sampler']} x{r.get('sampler_steps', '?')}"
    if isinstance(r.get("nfe_per_sample"), (int, float)):
        extra = [f"{r[k + '_per_sample']:g} {label}" for k, label in EXTRA_PASSES.items() if r.get(k + "_per_sample")]
        out["nfe"] = " + ".join([f"{r['nfe_per_sample']:g}", *extra])
    if isinstance(r.get("sampling_seconds"), (int, float)) and r.get("num_samples") and r["sampling_seconds"] > 0:
        out["samples_per_s"] = r["num_samples"] / r["sampling_seconds"]
    return out


def total_tflops(r: dict[str, Any]) -> float | None:
    """A run's own training compute plus what produced its starting point (parents, bases, fake pairs). Runs
    that start from nothing may predate the upstream count: their own compute is their total."""
    if "total_tflops" in r:
        return r["total_tflops"] if isinstance(r["total_tflops"], (int, float)) else None
    return r.get("train_tflops") if "upstream_tflops" not in r and not r.get("upstream") else None


def equal_compute(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose total compute is known get `compute_ratio` (their total FLOPs, own + upstream, over the
    least of those rows') and `steps_at_equal_flops` (the own steps that would bring their total to that
    least: 0 when the upstream alone exceeds it); a row with an uncounted part stays blank."""
    counted = [
        r
        for r in rows
        if (total_tflops(r) or 0) > 0
        and isinstance(r.get("gflops_per_step"), (int, float))
        and r["gflops_per_step"] > 0
    ]
    if not counted:
        return rows
    least = min(total_tflops(r) for r in counted)
    return [
        {
            **r,
            "compute_ratio": total_tflops(r) / least,
            "steps_at_equal_flops": round(
                1e3 * max(0.0, least - (r.get("upstream_tflops") or 0.0)) / r["gflops_per_step"]
            ),
        }
        if r in counted
        else r
        for r in rows
    ]


def _section(title: str, note: str, header: list[str]) -> list[str]:
    return ["", f"## {title}", "", note, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def seed_groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Configurations (method and variant) trained with two or more seeds: their runs."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if isinstance(r.get("seed"), int):
            groups.setdefault(r["method"], []).append(r)
    return {k: g for k, g in groups.items() if len({r["seed"] for r in g}) >= 2}


def _seeds_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Configurations trained with several seeds (`make suite SEEDS=3`): the mean over seeds with Student's t
    interval from 3 seeds on (the headline of a claim), mean ± sd with 2; then paired differences between
    configurations over their common seeds."""
    groups = seed_groups(rows)
    if not groups:
        return []
    lines = _section(
        "Across training seeds",
        f"mean over the runs of one configuration with different training "
        f"seeds: [lo, hi] is the 95% t interval over seeds (from {MIN_SEEDS} seeds; the spread a single "
        "run's interval does not show), ± sd with 2. Claims rest on these rows.",
        ["configuration", "seeds", *columns],
    )
    for method, group in sorted(groups.items()):
        cells = []
        for k in columns:
            values = [r[k] for r in group if isinstance(r.get(k), (int, float))]
            if len(values) >= MIN_SEEDS:
                mean, low, high = seed_interval(values)
                cells.append(f"{mean:.3f} [{low:.3f}, {high:.3f}]")
            else:
                cells.append(
                    f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) >= 2 else ""
                )
        lines.append(
            f"| {method} | {', '.join(str(s) for s in sorted(r['seed'] for r in group))} | " + " | ".join(cells) + " |"
        )
    return lines + _seed_differences(groups, columns)


def _seed_differences(groups: dict[str, list[dict[str, Any]]], columns: list[str]) -> list[str]:
    rows = []
    for a, b in combinations(sorted(groups), 2):
        for k in columns:
            values = [{r["seed"]: r[k] for r in groups[c] if isinstance(r.get(k), (int, float))} for c in (a, b)]
            diff = paired_seed_difference(*values)
            if diff is not None:
                rows.append(
                    f"| {a} - {b} | {k} | {diff['seeds']} | {diff['mean']:+.3f} [{diff['low']:+.3f}, "
                    f"{diff['high']:+.3f}] | {'resolved' if diff['resolved'] else 'unresolved'} |"
                )
    if not rows:
        return []
    return (
        _section(
            "Differences across training seeds",
            "a - b per training seed both were trained with, 95% t interval over those seeds; resolved: it excludes 0.",
            ["a - b", "metric", "seeds", "difference", ""],
        )
        + rows
    )


def _calibration_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    entries = [(r["run"], k, r["calibration"][k]) for r in rows for k in columns if k in r.get("calibration", {})]
    if not entries:
        return []
    lines = _section(
        "Calibration",
        "floor: mean (± sd) over derangements of the run's own pairs; shifted: audio "
        "moved by the protocol's shift; ceiling: real test pairs; normalised = (value - floor) / "
        "(ceiling - floor).",
        ["run", "metric", "floor", "shifted floor", "ceiling", "normalised"],
    )
    for run, k, c in entries:
        floor = f"{c['floor']:.3f} ± {c['floor_std']:.3f}" if "floor" in c else ""
        lines.append(
            f"| {run} | {k} | {floor} | {_fmt(c.get('shifted_floor'), k)} | {_fmt(c.get('ceiling'), k)} | "
            f"{_fmt(c.get('normalised'), k)} |"
        )
    return lines


def _paired_table(paired: list[dict[str, Any]]) -> list[str]:
    if not paired:
        return []
    lines = _section(
        "Paired differences",
        "a - b on the same sample indices (same noise and conditions), 95% interval (bootstrap over samples; "
        "for distances FD/FVD/FAD/KVD, the jackknife over the shared reference and the paired samples); "
        "resolved: the interval excludes 0. An unresolved difference is no evidence that the runs differ.",
        ["metric", "a", "b", "a - b", "interval", "resolved"],
    )
    return lines + _difference_rows(paired)


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


def generative(row: dict[str, Any]) -> bool:
    """Whether a run generates a modality (metrics.json `modalities`; runs scored before it was recorded
    count as generative), rather than a helper model trained alongside (a vocoder)."""
    return row.get("modalities", ["audio", "video"]) != []


def others_table(rows: list[dict[str, Any]]) -> str:
    """Trained models that generate no modality (a vocoder), apart from the generative methods: their own
    figures (`extra_scores`, e.g. a vocoder's log-mel error beside Griffin-Lim's on the same mels)."""
    if not rows:
        return ""
    columns = metric_columns(rows)
    info = ("parameters", "train_seconds", "steps")
    lines = [
        "## Other trained models",
        "",
        "Their own figures (see each model's docs); they generate no modality.",
        "",
        f"| run | method | {' | '.join([*columns, *info])} |",
        f"|{'---|' * (len(columns) + len(info) + 2)}",
    ]
    lines += [
        f"| {r['run']} | {r['method']} | " + " | ".join(_fmt(r.get(c), c) for c in [*columns, *info]) + " |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def plot(
    dataset: str, rows: list[dict[str, Any]], columns: list[str], out: Path, conflicts: dict | None = None
) -> list[str]:
    """Panels in a grid, one per metric (value bar, 95% interval, each run's floor | and ceiling x, a legend),
    runs labelled with their variant; a metric whose runs were scored under different protocols is drawn
    hatched under a warning, not dropped; then the training curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    conflicts = conflicts or {}
    names = []
    if columns:
        ncols = min(4, len(columns))
        nrows = math.ceil(len(columns) / ncols)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(max(3.4 * ncols, 5.0), (0.5 * len(rows) + 1.3) * nrows + 0.8), squeeze=False
        )
        ys = list(range(len(rows)))  # every panel has every run on the same row; a missing metric has no bar
        labels = [f"{r['run']}\n{str(r.get('variant') or '')[:40]}".strip() for r in rows]
        for k, ax in enumerate(axes.flat):
            if k >= len(columns):
                ax.axis("off")
                continue
            key = columns[k]
            values = [r[key] if isinstance(r.get(key), (int, float)) else float("nan") for r in rows]
            errors = [[0.0] * len(rows), [0.0] * len(rows)]
            for i, r in enumerate(rows):
                interval = r.get("intervals", {}).get(key)
                if interval and not math.isnan(values[i]):
                    errors[0][i], errors[1][i] = max(values[i] - interval[0], 0), max(interval[1] - values[i], 0)
            differ = key in conflicts
            ax.barh(
                ys,
                values,
                color="tab:orange" if differ else "tab:blue",
                hatch="//" if differ else None,
                xerr=errors,
                error_kw={"elinewidth": 1, "capsize": 2},
            )
            for mark, field, style in (("|", "floor", "black"), ("x", "ceiling", "tab:green")):
                points = [(i, r.get("calibration", {}).get(key, {}).get(field)) for i, r in enumerate(rows)]
                if field == "floor":  # the original single-shuffle chance level where no floor is recorded
                    points = [(i, v if v is not None else rows[i].get(f"{key}_shuffled")) for i, v in points]
                points = [(i, v) for i, v in points if isinstance(v, (int, float))]
                if points:
                    ax.scatter(
                        [v for _, v in points], [i for i, _ in points], marker=mark, s=200, color=style, zorder=3
                    )
            title = f"{key}\n(protocols differ: not comparable)" if differ else key
            ax.set_title(title, fontsize=9, color="tab:red" if differ else "black")
            ax.set_yticks(ys, labels if k % ncols == 0 else [""] * len(rows))
            ax.tick_params(labelsize=7)
            ax.invert_yaxis()
        legend = [
            Patch(color="tab:blue", label="value"),
            Line2D([], [], color="black", marker="_", markersize=10, label="95% interval (error bar)"),
            Line2D([], [], color="black", marker="|", linestyle="none", markersize=12, label="floor (chance)"),
            Line2D([], [], color="tab:green", marker="x", linestyle="none", markersize=9, label="ceiling (real data)"),
            Patch(facecolor="tab:orange", hatch="//", label="runs scored under different protocols"),
        ]
        per_row = len(legend) if ncols >= 3 else 2  # legend entries per line: what fits the figure's width
        fig.legend(handles=legend, loc="lower center", ncol=per_row, fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.22 * math.ceil(len(legend) / per_row) / fig.get_figheight(), 1, 1))
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


def report(
    dataset: str, rows: list[dict[str, Any]], out: Path, label: str | None = None
) -> tuple[str, list[str], list[str], list[dict[str, Any]]]:
    """(markdown, metric columns, plots, the generative runs reported) of one dataset's runs; metrics scored
    under different protocols are plotted hatched under a warning. `label` names the report and its plot files
    (default: the dataset)."""
    subset = [r for r in rows if r["dataset"] == dataset and generative(r)]
    others = [r for r in rows if r["dataset"] == dataset and not generative(r)]
    columns = metric_columns(subset)
    conflicts = protocol_conflicts(subset, columns)
    plots = plot(label or dataset, subset, columns, out, conflicts)
    text = markdown(label or dataset, subset, columns, plots, conflicts, paired_differences(subset)) + others_table(
        others
    )
    return text, columns, plots, subset
