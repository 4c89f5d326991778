"""What identifies and describes a run in reports: its dataset, method and variant, the metric columns in
display order, the keys that describe rather than score, and the logging of metrics.json's numbers."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

# metric columns in display order; any other numeric metric of a run is appended after them
METRICS = (
    "temporal_f1",
    "lag_contrast",
    "semantic_agreement",
    "temporal_alignment",
    "v2a_temporal_f1",
    "v2a_lag_contrast",
    "v2a_semantic_agreement",
    "v2a_temporal_alignment",
    "a2v_temporal_f1",
    "a2v_lag_contrast",
    "a2v_semantic_agreement",
    "a2v_temporal_alignment",
    "fd_video_pixels",
    "fd_audio_mel",
    "fvd",
    "kvd",
    "fad",
    "fad_per_sample",
    "fd_panns",
    "fd_vggish",
    "is_panns",
    "fd_passt",
    "is_passt",
    "fad_audioclip",
    "fad_audioclip_x1e4",
    "fad_audioclip_x1e4_reference_estimator",
    "v2a_fd_panns",
    "v2a_fd_vggish",
    "v2a_kl_panns",
    "v2a_is_panns",
    "v2a_fd_passt",
    "v2a_kl_passt",
    "v2a_is_passt",
    "av_align",
    "av_align_one_to_one",
    "v2a_beat_hit_rate_100ms",
    "v2a_beat_hit_rate_500ms",
    "ib_av",
    "v2a_ib_av",
    "ib_tv",
    "ib_ta",
    "desync",
    "v2a_desync",
    "clap_score",
)
INFO = (
    "parameters",
    "gflops_per_step",
    "train_tflops",
    "upstream_tflops",
    "total_tflops",
    "train_seconds",
    "ms_per_fe",
    "steps",
)
# metrics.json keys that describe a run rather than score it (W&B logs them under run/)
RUN_INFO = frozenset(
    {
        *INFO,
        "gflops_per_sample",
        "nfe_per_sample",
        "guidance_backward_per_sample",
        "discriminator_gradient_per_sample",
        "cfg_unconditional_per_sample",
        "sampling_gflops_per_sample",
        "seed",
        "cpu_cores",
        "torch_threads",
        "eval_ranks",
        "sampling_seconds",
        "sampler_steps",
        "num_samples",
        "num_clips",
        "peak_memory_gb",
        "guidance_scale",
        "samples_per_s",
        "compute_ratio",
        "steps_at_equal_flops",
        "eval_seconds",
        "events_per_clip",
        "onsets_per_clip",
        "kvd_std",
    }
)


def method_name(cfg: DictConfig) -> str:
    """The method's own `name` (methods/base.py)."""
    from hydra.utils import get_class

    return get_class(cfg.method._target_).name


def variant(cfg: DictConfig) -> str:
    """What tells runs of one method apart in a comparison: the method's own `variant` (methods/base.py)."""
    from hydra.utils import get_class

    return get_class(cfg.method._target_).variant(cfg)


def dataset_name(dm: Any) -> str:
    """The dataset a data module draws from (the store's metadata; raw-media modules name it themselves)."""
    return getattr(dm, "dataset_name", None) or dm.store.metadata["dataset"]


def log_run_metrics(logger, metrics: dict[str, Any], step: int | None) -> None:
    """metrics.json's numbers under the keys every method shares (val/temporal_alignment, val/fvd, ...; run
    descriptions under run/), then the logger is flushed and a W&B run finished (summary and files written)."""
    numbers = {
        f"{'run' if k in RUN_INFO else 'val'}/{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    logger.log_metrics(numbers, step=step)
    logger.save()
    if type(logger).__name__ == "WandbLogger":
        logger.experiment.finish()


def headline(metrics: dict[str, Any], k: str) -> str:
    """`temporal_f1 0.412 [0.35, 0.47] (floor 0.22)`: a score with its interval and floor, marked where it
    does not rise above chance or where its floor equals its ceiling (it cannot tell models apart)."""
    value, cal = metrics[k], metrics.get("calibration", {}).get(k, {})
    floor, ceiling = cal.get("floor"), cal.get("ceiling")
    if floor is not None and ceiling is not None and abs(ceiling - floor) < 1e-9:
        return f"{k} uninformative (floor = ceiling = {floor:.3f})"
    text = f"{k} {value:.3f}"
    interval = metrics.get("intervals", {}).get(k)
    if interval:
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    if floor is not None:
        # the interval must clear chance for the score to say the model learned the property at all
        text += f" (floor {floor:.3f}" + (", not resolved above it" if interval and interval[0] <= floor else "") + ")"
    return text


def closing_line(out_dir, metrics: dict[str, Any]) -> str:
    """`done: outputs/x (metrics.json: temporal_f1 0.412 [0.35, 0.47] (floor 0.22), ...)`: where the results
    are, the headline scores with their intervals and floors."""
    head = [headline(metrics, k) for k in METRICS if isinstance(metrics.get(k), (int, float))][:4]
    return f"done: {out_dir} (metrics.json{': ' + '; '.join(head) if head else ''})"
