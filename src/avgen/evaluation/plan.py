"""Which metrics a run is scored with (`evaluate.metrics`), checked before any sampling."""

from __future__ import annotations

from typing import Any

WEIGHTED = {
    "fvd": ("weights",),
    "fad": ("weights",),
    "panns": ("weights",),
    "passt": ("weights",),
    "audioclip": ("weights",),
    "vggish": ("weights",),
    "imagebind": ("video", "audio"),
    "desync": ("weights",),
    "clap": ("weights",),
}
AV_ALIGN = {"av_align": "reference", "av_align_one_to_one": "one_to_one"}  # metric name -> mode (metrics/av_align.py)


def metric_plan(cfg: Any, dataset: str) -> list[str]:
    """The metrics to compute (`evaluate.metrics`); `auto` = the exact metrics on the synthetic store, else
    AV-Align, beat hit rate on AIST++ and every weighted metric whose weights (a local path or a registry name)
    are set. A listed weighted metric without weights is an error here, before any sampling."""
    names = cfg.evaluate.metrics
    if names == "auto":
        if dataset == "synthetic":
            return ["synthetic"]
        names = [
            "av_align",
            *(["beats"] if dataset == "aistpp" else []),
            *(m for m, keys in WEIGHTED.items() if all(cfg.evaluate[m][k] for k in keys)),
        ]
    unknown = set(names) - {"synthetic", *AV_ALIGN, "beats", *WEIGHTED}
    if unknown:
        raise ValueError(
            f"evaluate.metrics: unknown {sorted(unknown)}; choose from synthetic, {', '.join(AV_ALIGN)}, beats, "
            f"{', '.join(WEIGHTED)}"
        )
    for m in set(names) & set(WEIGHTED):
        missing = [f"evaluate.{m}.{k}" for k in WEIGHTED[m] if not cfg.evaluate[m][k]]
        if missing:
            raise ValueError(
                f"evaluate.metrics lists {m}, which needs weights: set {', '.join(missing)} "
                "(a local path or a registry name: avgen weights)"
            )
    if "synthetic" in names and dataset != "synthetic":
        raise ValueError(f"evaluate.metrics: the synthetic metrics need the synthetic store, not {dataset}")
    return list(names)
