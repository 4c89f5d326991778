"""Choosing the reconstruction-guidance lambda on the validation split (never on test): conditional pairs
(v2a, a2v) of one trained run for each lambda, scored with intervals and floors, and the lambda whose mean
v2a and a2v lag contrast (alignment) is highest. The chosen value is then the run's `sampler.guidance_scale`
for scoring on the test split."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from avgen.evaluation.scoring import evaluate
from avgen.utils.io import write_json, write_text

CRITERION = ("v2a_lag_contrast", "a2v_lag_contrast")
SHOWN = (
    "v2a_lag_contrast",
    "a2v_lag_contrast",
    "v2a_temporal_f1",
    "a2v_temporal_f1",
    "v2a_semantic_agreement",
    "a2v_semantic_agreement",
)


def guidance_sweep(cfg: DictConfig, module, dm, out_dir: Path, lambdas: Sequence[float]) -> dict[str, Any]:
    """Score each lambda into out_dir/lambda_<value>/metrics.json; summary.{json,md} name the chosen one."""
    if dm.splits["val"] == "test":
        raise ValueError(
            "a guidance sweep chooses a setting: run it on the validation split (data.val_split=val), never on test"
        )
    rows = []
    for lam in lambdas:
        run_cfg = copy.deepcopy(cfg)
        with open_dict(run_cfg):
            run_cfg.sampler.guidance_scale = float(lam)
            run_cfg.evaluate.num_samples = 0
        folder = out_dir / f"lambda_{lam:g}"
        metrics = evaluate(module, dm, folder, run_cfg)
        write_json(folder / "metrics.json", metrics)
        rows.append(
            {
                "lambda": float(lam),
                **{k: metrics.get(k) for k in SHOWN},
                "intervals": {k: metrics.get("intervals", {}).get(k) for k in SHOWN},
                "floors": {k: metrics.get("calibration", {}).get(k, {}).get("floor") for k in SHOWN},
            }
        )
    scored = [r for r in rows if all(isinstance(r.get(k), float) for k in CRITERION)]
    chosen = max(scored, key=lambda r: sum(r[k] for k in CRITERION)) if scored else None
    summary = {
        "split": dm.splits["val"],
        "guidance_norm": cfg.sampler.get("guidance_norm", "balanced"),
        "criterion": f"mean of {' and '.join(CRITERION)}",
        "rows": rows,
        "chosen_lambda": chosen["lambda"] if chosen else None,
    }
    write_json(out_dir / "summary.json", summary)
    write_text(out_dir / "summary.md", markdown(summary))
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Guidance lambda on the {summary['split']} split (norm {summary['guidance_norm']})",
        "",
        f"Chosen by the {summary['criterion']}: **lambda = {summary['chosen_lambda']}**.",
        "",
        "| lambda | " + " | ".join(SHOWN) + " |",
        "|---|" + "---|" * len(SHOWN),
    ]
    for r in summary["rows"]:
        cells = []
        for k in SHOWN:
            value, interval, floor = r.get(k), r["intervals"].get(k), r["floors"].get(k)
            cell = f"{value:.3f}" if isinstance(value, float) else ""
            cell += f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
            cell += f" (floor {floor:.3f})" if isinstance(floor, float) else ""
            cells.append(cell)
        lines.append(f"| {r['lambda']:g} | " + " | ".join(cells) + " |")
    lines += ["", "[lo, hi]: 95% bootstrap interval over the pairs; floor: the mean over derangements of the pairs."]
    return "\n".join(lines) + "\n"
