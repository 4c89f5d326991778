"""The suite registry (avgen/suite.py) and the commands that read it: which runs `make suite` trains and
under which names, what `make pipeline` trains first, what `make gpu-smoke` covers."""

from __future__ import annotations

import pytest

from avgen.suite import representatives, runs, smoke_overrides


def test_runs_expand_variants_and_seeds():
    expanded = {r.name: r for r in runs("synthetic", seeds=2)}
    assert {
        "cmmd_synthetic",
        "cmmd_synthetic_seed1",
        "mmdisco_synthetic_shifted",
        "mmdisco_synthetic_linear_seed1",
        "flowdit_independent_synthetic_seed1",
    } <= set(expanded)
    assert "base_audio_synthetic_seed1" not in expanded  # one training seed of the bases serves every seed
    shifted = expanded["mmdisco_synthetic_shifted_seed1"]
    assert shifted.experiment == "mmdisco_synthetic" and shifted.seed == 1
    assert shifted.train_args() == [
        "train",
        "experiment=mmdisco_synthetic",
        "name=mmdisco_synthetic_shifted_seed1",
        "seed=1",
        "data.fakes=shifted",
    ]
    names = [r.name for r in runs("synthetic")]
    assert names.index("base_audio_synthetic") < names.index("mmdisco_synthetic")  # what a run needs comes first


def test_smoke_overrides_keep_interpolations_for_the_run():
    assert "data.fake_store=${output_dir}/fake_cache" in smoke_overrides("mmdisco_synthetic")
    assert smoke_overrides("cmmd_synthetic")[0] == "debug=smoke"
    with pytest.raises(ValueError, match="no suite registry"):
        smoke_overrides("no_such_run")


def test_every_method_has_a_representative_after_what_it_starts_from():
    order = representatives("synthetic")
    assert order.index("base_audio_synthetic") < order.index("mmdisco_synthetic")
    assert {"cmmd_synthetic", "flowdit_synthetic", "mmdisco_synthetic", "vocoder_melgan_synthetic"} <= set(order)
    assert representatives("synthetic", methods_only=True) == [
        "cmmd_synthetic",
        "flowdit_synthetic",
        "mmdisco_synthetic",
    ]


@pytest.fixture
def calls(monkeypatch):
    made: list[list[str]] = []
    for module in ("avgen.cli.suite", "avgen.cli.pipeline", "avgen.cli.gpu_smoke"):
        monkeypatch.setattr(f"{module}.train", lambda args, log=None: made.append(args) or 0)
    return made


def test_suite_trains_what_is_missing_then_compares(tmp_path, calls):
    from avgen.cli.main import main

    (tmp_path / "cmmd_synthetic").mkdir()
    (tmp_path / "cmmd_synthetic" / "metrics.json").write_text("{}")
    assert main(["suite", "dataset=synthetic", f"paths.output_dir={tmp_path}"]) == 0
    trained = [a[2] for a in calls[:-1]]
    assert "name=cmmd_synthetic" not in trained and "name=ncmmd_synthetic" in trained
    assert all("evaluate.num_samples=128" in a for a in calls[:-1])  # the registry's shared evaluation
    assert calls[-1][:2] == ["compare", "dataset_name=synthetic"]


def test_suite_without_report_trains_and_stops(tmp_path, calls, capsys):
    from avgen.cli.main import main

    args = ["suite", "dataset=synthetic", "only=ncmmd_synthetic", f"paths.output_dir={tmp_path}"]
    assert main([*args, "report=false"]) == 0
    assert [a[2] for a in calls] == ["name=ncmmd_synthetic"]  # trained, and no compare after it
    assert "make compare DATASET=synthetic" in capsys.readouterr().out
    assert main([*args, "report=maybe"]) != 0  # a clear error, not a silent default


def test_command_flags_read_true_or_false_and_refuse_the_rest():
    """`report=`, `optimizer=` (consolidate): one parser for every command-level on/off argument."""
    from avgen.cli.args import pop_flag

    assert pop_flag(["report=No", "x=1"], "report", default=True) == (False, ["x=1"])
    assert pop_flag(["report=1"], "report") == (True, [])
    assert pop_flag([], "report", default=True) == (True, [])
    with pytest.raises(ValueError, match="report='maybe'"):
        pop_flag(["report=maybe"], "report")


def test_pipeline_trains_the_upstream_runs_first(tmp_path, calls):
    from avgen.cli.main import main

    done = tmp_path / "base_audio_synthetic" / "checkpoints"
    done.mkdir(parents=True)
    (done / "last.ckpt").write_bytes(b"")
    assert (
        main(
            [
                "pipeline",
                "experiment=mmdisco_synthetic",
                f"paths.output_dir={tmp_path}",
                "base_args=trainer.max_steps=3",
            ]
        )
        == 0
    )
    assert [a[1] for a in calls] == ["experiment=base_video_synthetic", "experiment=mmdisco_synthetic"]
    assert "trainer.max_steps=3" in calls[0] and "trainer.max_steps=3" not in calls[1]


def test_gpu_smoke_runs_every_registered_method(calls):
    from avgen.cli.main import main

    assert main(["gpu-smoke"]) == 0
    experiments = [a[1].split("=", 1)[1] for a in calls]
    assert experiments == representatives("synthetic")
    assert all("trainer=gpu" in a and "debug=smoke" in a for a in calls)
