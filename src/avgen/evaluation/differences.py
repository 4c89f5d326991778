"""Differences between runs of one comparison: per sample on the same indices (the synthetic statistics), for
feature distances against one reference, against each run's control, under one protocol. `comparison.py`
loads the runs and renders the report; this computes what it reports as differences."""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import torch

from avgen.metrics.seeds import paired_seed_difference
from avgen.metrics.stats import paired_difference, paired_distance_difference
from avgen.metrics.synthetic import STATISTICS

GENERAL_PROTOCOL = ("num_samples", "metrics_reference")


def protocol_of(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """What a metric's value depends on besides the model: sample count, reference split, and the metric's
    own settings (the synthetic tolerance, lags and derangements; a media metric's extractor and its SHA-256,
    rates, sizes, scale, vocoder)."""
    prefix = next((p for p in ("v2a_", "a2v_") if metric.startswith(p)), "")
    family = f"{prefix}synthetic" if metric[len(prefix) :] in STATISTICS else metric
    own = row.get("protocol", {}).get(family, {})
    return {**{k: row.get(k) for k in GENERAL_PROTOCOL}, **own}


def paired_differences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pair of runs with per-sample counts on the same sample indices and the same protocol: each
    statistic's difference with its 95% interval (the runs' own in-run pairs, e.g. guided - no joint, too)."""
    loaded = {}
    for r in rows:
        path = r.get("per_sample")
        if path is not None and Path(path).is_file():
            loaded[r["run"]] = json.loads(Path(path).read_text())
    out = []
    for r in rows:  # in-run pairs written by evaluation
        for name, d in r.get("paired", {}).items():
            metric, label = name.split(": ", 1)
            out.append({"metric": metric, "a": r["run"], "b": label, **d})
    by_run = {r["run"]: r for r in rows}
    for a, b in combinations(sorted(loaded), 2):
        for family in sorted(set(loaded[a]) & set(loaded[b])):
            if family.startswith("no_joint_"):
                continue
            prefix = family[: -len("synthetic")]
            ca, cb = loaded[a][family], loaded[b][family]
            same = len(next(iter(ca.values()))) == len(next(iter(cb.values()))) and protocol_of(
                by_run[a], f"{prefix}temporal_f1"
            ) == protocol_of(by_run[b], f"{prefix}temporal_f1")
            if not same:
                continue
            for metric, statistic in STATISTICS.items():
                d = paired_difference(ca, cb, statistic)
                out.append({"metric": f"{prefix}{metric}", "a": a, "b": b, **d.as_dict()})
    return out + paired_distance_differences(rows)


def distance_names(prefix: str) -> dict[str, str]:
    """{kind: metric} of one FeatureDistances prefix: fvd -> FD "fvd" and KD "kvd"."""
    return {"fd": prefix, "kvd": f"k{prefix[1:]}"}


def paired_distance_differences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FD/FVD/FAD and KVD differences between every pair of runs that kept their features
    (`distance_features.pt`) and scored them against the identical reference under one protocol, on the same
    number of samples paired by index (metrics.stats.paired_distance_difference)."""
    loaded = {}
    for r in rows:
        path = r.get("distance_features")
        if path is not None and Path(path).is_file():
            loaded[r["run"]] = torch.load(path, map_location="cpu", weights_only=True)
    by_run, out = {r["run"]: r for r in rows}, []
    for a, b in combinations(sorted(loaded), 2):
        for prefix in sorted(set(loaded[a]) & set(loaded[b])):
            fa, fb = loaded[a][prefix], loaded[b][prefix]
            comparable = (
                fa["reference"].shape == fb["reference"].shape
                and torch.equal(fa["reference"], fb["reference"])
                and len(fa["generated"]) == len(fb["generated"])
                and protocol_of(by_run[a], prefix) == protocol_of(by_run[b], prefix)
            )
            if not comparable:
                continue
            for kind, metric in distance_names(prefix).items():
                if isinstance(by_run[a].get(metric), (int, float)) and isinstance(by_run[b].get(metric), (int, float)):
                    d = paired_distance_difference(fa["reference"], fa["generated"], fb["generated"], kind)
                    out.append({"metric": metric, "a": a, "b": b, **d.as_dict()})
    return out


def control_differences(
    rows: list[dict[str, Any]], paired: list[dict[str, Any]], columns: list[str]
) -> list[dict[str, Any]]:
    """Each run against its control (a registry entry's `control`: e.g. CMMD and the same continuation with
    eta = 0), same training seed: the paired differences oriented run - control, then across seeds."""
    from avgen.suite import controls

    control_of = controls()
    by_run = {r["run"]: r for r in rows}

    def base(run: str) -> str:  # the registry's run of a seed's folder (variants keep their own names)
        return re.sub(r"_seed\d+$", "", run)

    def is_control(a: str, b: str) -> bool:
        ra, rb = by_run.get(a, {}), by_run.get(b, {})
        if ra.get("seed") != rb.get("seed") or base(a) != ra.get("experiment") or base(b) != rb.get("experiment"):
            return False
        return control_of.get(base(a)) == base(b)

    out = []
    for d in paired:
        if is_control(d["a"], d["b"]):
            out.append(d)
        elif is_control(d["b"], d["a"]):
            lo, hi = d["interval"]
            out.append({**d, "a": d["b"], "b": d["a"], "difference": -d["difference"], "interval": [-hi, -lo]})
    for experiment, control in control_of.items():
        runs = [r for r in rows if base(r["run"]) == experiment == r.get("experiment")]
        refs = [r for r in rows if base(r["run"]) == control == r.get("experiment")]
        for k in columns:
            values = [{r["seed"]: r[k] for r in g if isinstance(r.get(k), (int, float))} for g in (runs, refs)]
            diff = paired_seed_difference(*values)
            if diff is not None:
                out.append(
                    {
                        "metric": k,
                        "a": f"{experiment} (seeds)",
                        "b": f"{control} (seeds)",
                        "difference": diff["mean"],
                        "interval": [diff["low"], diff["high"]],
                        "resolved": diff["resolved"],
                    }
                )
    return out
