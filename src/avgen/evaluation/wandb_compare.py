"""The comparison in Weights & Biases: tables logged by `avgen compare wandb.log=true`, and the dashboard as code
(`avgen wandb-report`, `make wandb-report DATASET=...`).

Tables, in one run per dataset group (job type `compare`, beside the training runs of that group):
- `compare/metrics`: one row per run and metric: value, 95% interval, floor, ceiling, normalised score;
- `compare/paired`: the paired differences with their intervals, resolved or not;
- `compare/samples`: the sample grid of the HTML report: one row per sample index, one video column per run.

The workspace (`workspace(...)`, built with the `wandb-workspaces` package): a section of bar charts, one per
metric with the group's runs side by side; the sample grid table; the training loss curves; runs filtered to
the dataset's group. Built and checked offline; saved to W&B only when online.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avgen.evaluation.html_report import GRIDS, run_samples

SAMPLES_TABLE = "compare/samples"


def metric_rows(rows: list[dict[str, Any]], columns: list[str]) -> list[list[Any]]:
    """[run, variant, metric, value, low, high, floor, ceiling, normalised] for every scored metric."""
    out = []
    for r in rows:
        for k in columns:
            value = r.get(k)
            if not isinstance(value, (int, float)):
                continue
            low, high = (r.get("intervals", {}).get(k) or (None, None))[:2]
            cal = r.get("calibration", {}).get(k, {})
            out.append(
                [r["run"], str(r.get("variant", "")), k, float(value), low, high]
                + [cal.get("floor"), cal.get("ceiling"), cal.get("normalised")]
            )
    return out


def sample_grid_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows of mp4 paths or None) of the joint-sample grid: sample index, then one column per run."""
    found, indices = run_samples(rows, GRIDS[0][1])
    grid = [[i, *(str(s[i]) if i in s else None for s in found.values())] for i in indices]
    return ["sample", *found], grid


def log_comparison(
    dataset: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    paired: list[dict[str, Any]],
    save_dir: Path,
    project: str = "avgen",
    entity: str | None = None,
    offline: bool = True,
) -> Path:
    """Log the three tables in a run of the dataset's group; returns the run's folder."""
    import wandb

    run = wandb.init(
        project=project,
        entity=entity,
        group=dataset,
        job_type="compare",
        name=f"compare-{dataset}",
        dir=str(save_dir),
        mode="offline" if offline else "online",
        config={"dataset": dataset, "runs": [r["run"] for r in rows], "metrics": columns},
    )
    metrics = wandb.Table(
        columns=["run", "variant", "metric", "value", "low", "high", "floor", "ceiling", "normalised"],
        data=metric_rows(rows, columns),
    )
    pairs = wandb.Table(
        columns=["metric", "a", "b", "difference", "low", "high", "resolved"],
        data=[[d["metric"], d["a"], d["b"], d["difference"], *d["interval"], d["resolved"]] for d in paired],
    )
    head, grid = sample_grid_rows(rows)
    samples = wandb.Table(
        columns=head, data=[[i, *(wandb.Video(p, format="mp4") if p else None for p in cells)] for i, *cells in grid]
    )
    run.log({"compare/metrics": metrics, "compare/paired": pairs, SAMPLES_TABLE: samples})
    folder = Path(run.dir).parent
    run.finish()
    return folder


def workspace(entity: str, project: str, dataset: str, metrics: list[str]):
    """The dashboard of one dataset group: metrics side by side, the sample grid, the loss curves."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    bars = [wr.BarPlot(title=m, metrics=[f"val/{m}"]) for m in metrics]
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"avgen: {dataset}",
        sections=[
            ws.Section(name=f"{dataset}: metrics, runs side by side", is_open=True, panels=bars),
            ws.Section(
                name=f"{dataset}: samples (one row per seed)",
                is_open=True,
                panels=[wr.WeavePanelSummaryTable(table_name=SAMPLES_TABLE)],
            ),
            ws.Section(
                name=f"{dataset}: training",
                is_open=True,
                panels=[wr.LinePlot(title="train/loss", y=["train/loss"], x="Step", log_y=True)],
            ),
        ],
        runset_settings=ws.RunsetSettings(filters=f"Metric('Group') = '{dataset}'"),
    )
