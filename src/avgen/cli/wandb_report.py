"""`avgen wandb-report [dataset_name=...] [wandb.entity=...]` (`make wandb-report DATASET=...`): the W&B
dashboard of a dataset group as code (`avgen.evaluation.wandb_compare.workspace`): a bar chart per metric with
the group's runs side by side, the comparison's sample grid (logged by `make compare ARGS=wandb.log=true`),
the loss curves. Online (`wandb.offline=false`, an entity and WANDB_API_KEY) it is saved to W&B and its URL
printed; offline its layout is written to `outputs/compare/<dataset>_wandb_workspace.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from avgen.cli.compare import select
from avgen.config import load_config
from avgen.evaluation.comparison import generative, load_runs, metric_columns
from avgen.evaluation.wandb_compare import workspace
from avgen.utils.io import write_text


def run(overrides: list[str]) -> int:
    cfg = load_config("compare", overrides)
    outputs = Path(cfg.paths.output_dir)
    rows = load_runs(outputs, cfg.scores_from, cfg.only_rescored)
    datasets = [cfg.dataset_name] if cfg.dataset_name else sorted({r["dataset"] for r in rows})
    if not datasets:
        raise FileNotFoundError(f"no run with metrics.json under {outputs}/*/; train some first (make train EXP=...)")
    out = outputs / "compare"
    for dataset in datasets:
        chosen = [r for r in select(rows, dataset, cfg.runs, list(cfg.exclude))[0] if generative(r)]
        view = workspace(cfg.wandb.entity or "<entity>", cfg.wandb.project, dataset, metric_columns(chosen))
        if cfg.wandb.offline or not cfg.wandb.entity:
            path = out / f"{dataset}_wandb_workspace.json"
            write_text(path, json.dumps(view._to_model().model_dump(by_alias=True, mode="json"), indent=1))
            print(
                f"{path}: the {dataset} workspace's layout (offline; wandb.offline=false wandb.entity=<you> saves it)"
            )
        else:
            view.save()
            print(f"W&B workspace for {dataset}: {view.url}")
    return 0
