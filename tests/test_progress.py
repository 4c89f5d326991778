"""Training progress (callbacks/progress.py): the rate and ETA follow the recent pace."""

from __future__ import annotations

from types import SimpleNamespace

import avgen.callbacks.progress as progress


def test_the_rate_follows_a_change_of_pace(monkeypatch, capsys):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = progress.StepProgress(every_seconds=30, force_lines=True, window_seconds=60)
    trainer = SimpleNamespace(is_global_zero=True, global_step=0, max_steps=2000, callback_metrics={})
    bar.on_train_start(trainer, None)
    for step in range(1, 1001):  # 10 steps/s for 100 s
        clock[0] += 0.1
        trainer.global_step = step
        bar.on_train_batch_end(trainer, None, None, None, step)
    assert abs(bar.recent_rate() - 10) < 1e-6
    for step in range(1001, 1121):  # then 1 step/s for 120 s (another job took the cores)
        clock[0] += 1.0
        trainer.global_step = step
        bar.on_train_batch_end(trainer, None, None, None, step)
    assert abs(bar.recent_rate() - 1.0) < 0.05  # the whole-run average would say 5.1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "step 1112/2000" in last and "1.00 steps/s" in last and "ETA 14m48s" in last, last  # 888 steps at 1/s


def test_the_closing_line_gives_intervals_floors_and_uninformative_scores():
    from avgen.evaluation.report import closing_line

    metrics = {
        "temporal_f1": 0.412,
        "a2v_temporal_f1": 0.163,
        "semantic_agreement": 1.0,
        "intervals": {"temporal_f1": [0.35, 0.47], "a2v_temporal_f1": [0.073, 0.2]},
        "calibration": {
            "temporal_f1": {"floor": 0.22, "ceiling": 0.9},
            "a2v_temporal_f1": {"floor": 0.221, "ceiling": 0.9},
            "semantic_agreement": {"floor": 1.0, "ceiling": 1.0},
        },
    }
    line = closing_line("outputs/x", metrics)
    assert line == (
        "done: outputs/x (metrics.json: temporal_f1 0.412 [0.350, 0.470] (floor 0.220); semantic_agreement "
        "uninformative (floor = ceiling = 1.000); a2v_temporal_f1 0.163 [0.073, 0.200] "
        "(floor 0.221, not resolved above it))"
    )


def test_the_forecast_comes_from_the_last_run_on_this_machine(tmp_path, monkeypatch):
    from avgen.utils import timings

    monkeypatch.setenv("AVGEN_TIMINGS_FILE", str(tmp_path / "timings.json"))
    assert timings.expected("cmmd_synthetic", 2, "abc", 1600, 128).startswith("expected: no run measured")
    timings.record("cmmd_synthetic", 2, "abc", setup_s=20.0, train_s=400.0, steps=1000, eval_s=64.0, eval_samples=128)
    line = timings.expected("cmmd_synthetic", 2, "abc", 1600, 64)
    assert line.startswith("expected on this machine: setup ~20s, training ~10m40s (1600 steps at 2.5 steps/s)")
    assert "evaluation ~32s" in line and "rough guide" not in line
    assert "another run shape: a rough guide" in timings.expected("flowdit_synthetic", 2, "xyz", 100, 0)
    # without its own record, the nearest run: the same network before a later run of another one
    timings.record("cmmd_synthetic", 2, "abc2", 1.0, 100.0, 100, None, None, model_shape="unet")
    timings.record("base_audio_synthetic", 2, "def", 1.0, 10.0, 100, None, None, model_shape="audio")
    assert "(100 steps at 1.0 steps/s) (measured by cmmd_synthetic" in timings.expected(
        "cmmd_quick_synthetic", 2, "new", 100, 0, model_shape="unet"
    )
    assert "measured by base_audio_synthetic" in timings.expected("other", 2, "new", 100, 0, model_shape="dit")
    (tmp_path / "timings.json").write_text("{not json")  # damaged: replaced, never fatal
    timings.record("cmmd_synthetic", 2, "abc", 1.0, 1.0, 1, None, None)
    assert "steps at 1.0 steps/s" in timings.expected("cmmd_synthetic", 2, "abc", 10, 0)


def test_diffusers_says_accelerate_is_missing_once(capsys):
    import logging

    from avgen.utils import warnings

    warnings.quiet()
    warnings._ACCELERATE_ONCE.seen = False  # whatever this process loaded before
    handler = logging.StreamHandler()
    for name in ("diffusers.models.modeling_utils", "diffusers.pipelines.pipeline_utils"):
        logging.getLogger(name).addHandler(handler)
    try:
        for name in ("diffusers.models.modeling_utils", "diffusers.pipelines.pipeline_utils") * 3:
            logging.getLogger(name).warning("Cannot initialize model because `accelerate` was not found in the env")
        logging.getLogger("diffusers.models.modeling_utils").warning("another warning")
    finally:
        for name in ("diffusers.models.modeling_utils", "diffusers.pipelines.pipeline_utils"):
            logging.getLogger(name).removeHandler(handler)
    err = capsys.readouterr().err
    assert err.count("`accelerate` was not found") == 1 and "another warning" in err


def test_a_process_knows_how_long_it_has_run():
    import time

    from avgen.utils.process import process_seconds

    age = process_seconds()
    assert age is not None and 0 < age < time.time()  # imports included: more than a moment into the tests
