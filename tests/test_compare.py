"""`avgen compare`: the side-by-side report and plots from fixture metrics files, offline."""

from __future__ import annotations

import json

from avgen.cli.main import main


def write_run(outputs, name, metrics, losses=None):
    (outputs / name / "logs").mkdir(parents=True)
    (outputs / name / "metrics.json").write_text(json.dumps(metrics))
    if losses:
        rows = "".join(f"0,{10 * (i + 1)},{v}\n" for i, v in enumerate(losses))
        (outputs / name / "logs" / "metrics.csv").write_text("epoch,step,train/loss\n" + rows)


def test_compare_report_and_plots(tmp_path, capsys):
    out = tmp_path / "outputs"
    write_run(
        out,
        "cmmd_synthetic",
        {
            "dataset": "synthetic",
            "method": "cmmd",
            "variant": "coupling=easy_fusion, eta=0.02",
            "temporal_alignment": 0.663,
            "temporal_alignment_shuffled": 0.511,
            "semantic_agreement": 0.391,
            "parameters": 1_234_567,
            "train_seconds": 690.0,
            "ms_per_fe": 41.5,
            "steps": 1600,
        },
        losses=[1.0, 0.5, 0.25],
    )
    write_run(
        out,
        "mmdisco_synthetic",
        {
            "dataset": "synthetic",
            "method": "mmdisco",
            "variant": "head=mlp",
            "temporal_alignment": 0.60,
            "semantic_agreement": 0.30,
            "no_joint_temporal_alignment": 0.548,
            "no_joint_semantic_agreement": 0.203,
            "parameters": 100_000,
            "train_seconds": 449.0,
            "steps": 1000,
        },
        losses=[0.7, 0.6],
    )
    write_run(out, "cmmd_aistpp", {"dataset": "aistpp", "method": "cmmd", "fvd": 300.0})
    write_run(
        out,
        "vocoder_melgan_synthetic",
        {
            "dataset": "synthetic",
            "method": "vocoder",
            "variant": "",
            "modalities": [],
            "mel_l1": 0.21,
            "mel_l1_griffin_lim": 0.17,
            "parameters": 1_500_000,
        },
    )
    (out / "broken").mkdir()
    (out / "broken" / "metrics.json").write_text("{not json")
    assert main(["compare", f"paths.output_dir={out}", "dataset_name=synthetic"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| run | method | semantic_agreement | temporal_alignment |")
    body = "\n".join(lines[1:])
    assert "| cmmd_synthetic | cmmd (coupling=easy_fusion, eta=0.02) | 0.391 | 0.663 (0.511) |" in body
    assert (
        "| mmdisco_synthetic (no joint: independent bases) | independent bases, guidance off | 0.203 | 0.548 |" in body
    )
    assert "1.23M" in body and "11.5 min" in body and "cmmd_aistpp" not in report and "fvd" not in report
    assert "chance level" in report
    # a model that generates no modality (the vocoder) is not a generative row: its own table, its numbers
    # nowhere among the metric columns
    others = report.split("## Other trained models")[1]
    assert "| run | method | mel_l1 | mel_l1_griffin_lim | parameters |" in others
    assert "| vocoder_melgan_synthetic | vocoder () | 0.210 | 0.170 | 1.50M |" in others
    assert "mel_l1" not in lines[0]
    for png in ("synthetic_metrics.png", "synthetic_curves.png"):
        assert (out / "compare" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png})" in report
    assert "skipping" in capsys.readouterr().out


def test_compare_without_runs_names_what_to_do(tmp_path, capsys):
    assert main(["compare", f"paths.output_dir={tmp_path}"]) == 2
    assert "make train" in capsys.readouterr().err


def test_rescored_metrics_take_precedence(tmp_path):
    out = tmp_path / "outputs"
    write_run(
        out, "run", {"dataset": "synthetic", "method": "mmdisco", "temporal_alignment": 0.1, "train_seconds": 60.0}
    )
    (out / "run" / "eval").mkdir()
    (out / "run" / "eval" / "metrics.json").write_text(json.dumps({"temporal_alignment": 0.5}))
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "| 0.500 |" in report and "1.0 min" in report and "0.100" not in report


def test_rescored_scores_are_never_mixed_with_training_scores(tmp_path):
    out = tmp_path / "outputs"
    write_run(
        out,
        "run",
        {
            "dataset": "synthetic",
            "method": "cmmd",
            "temporal_alignment": 0.1,
            "v2a_temporal_alignment": 0.2,
            "train_seconds": 60.0,
        },
    )
    (out / "run" / "eval").mkdir()
    (out / "run" / "eval" / "metrics.json").write_text(json.dumps({"temporal_alignment": 0.5}))
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "0.200" not in report and "| eval/metrics.json |" in report  # v2a was not re-scored: not shown


def calibrated(value, lo, hi, num_samples=128, tolerance=0.5):
    return {
        "dataset": "synthetic",
        "method": "cmmd",
        "temporal_f1": value,
        "num_samples": num_samples,
        "sampler": "ddim",
        "sampler_steps": 50,
        "metrics_reference": "synthetic test split",
        "intervals": {"temporal_f1": [lo, hi]},
        "calibration": {
            "temporal_f1": {
                "floor": 0.2,
                "floor_std": 0.02,
                "shifted_floor": 0.1,
                "ceiling": 0.95,
                "normalised": (value - 0.2) / 0.75,
            }
        },
        "protocol": {
            "synthetic": {
                "tolerance_frames": tolerance,
                "lag_frames": 2.0,
                "shift_frames": 3.0,
                "num_derangements": 100,
                "seed": 1234,
            }
        },
    }


def test_protocol_mismatch_is_named_and_drawn_apart(tmp_path):
    out = tmp_path / "outputs"
    write_run(out, "a", calibrated(0.6, 0.55, 0.65))
    write_run(out, "b", calibrated(0.5, 0.45, 0.55, num_samples=64, tolerance=1.0))
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "**Warning**: `temporal_f1` was scored under different protocols" in report
    assert "num_samples=128" in report and "num_samples=64" in report and "tolerance_frames=1.0" in report
    assert "synthetic_metrics.png" in report  # drawn hatched under a warning, not dropped


def test_a_different_extractor_behind_a_media_metric_is_a_protocol_conflict(tmp_path):
    out = tmp_path / "outputs"
    for name, sha in (("a", "0" * 64), ("b", "f" * 64)):
        write_run(
            out,
            name,
            {
                "dataset": "landscape",
                "method": "cmmd",
                "fvd": 300.0,
                "num_samples": 128,
                "metrics_reference": "landscape test split",
                "intervals": {"fvd": [280.0, 330.0]},
                "protocol": {
                    "fvd": {"extractor": {"file": "i3d.pt", "sha256": sha}, "num_frames": 16, "resolution": 224}
                },
            },
        )
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "landscape.md").read_text()
    assert "**Warning**: `fvd` was scored under different protocols" in report and "f" * 64 in report
    assert "landscape_metrics.png" in report


def test_report_gives_intervals_calibration_and_paired_differences(tmp_path):
    import numpy as np

    out = tmp_path / "outputs"
    rng = np.random.default_rng(0)
    n = 128
    base = (rng.uniform(size=n) < 0.5).astype(float)
    better = np.maximum(base, (rng.uniform(size=n) < 0.3).astype(float))
    for name, matched in (("good", better), ("plain", base)):
        write_run(out, name, calibrated(float(matched.mean()), 0.4, 0.7))
        columns = {
            c: [0.0] * n
            for c in ("matched_p", "total_p", "matched_m", "total_m", "matched_orig", "total_orig", "agree")
        }
        columns.update(matched_0=(2 * matched).tolist(), total_0=[2.0] * n, one=[1.0] * n)
        (out / name / "per_sample.json").write_text(json.dumps({"synthetic": columns}))
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "**Protocol** of temporal_f1:" in report and "tolerance_frames 0.5" in report and "Warning" not in report
    assert "[0.400, 0.700]" in report and "0.200 ± 0.020" in report
    row = next(line for line in report.splitlines() if line.startswith("| temporal_f1 | good | plain |"))
    assert row.endswith("| yes |")


def test_runs_of_several_seeds_get_a_seed_level_headline(tmp_path):
    out = tmp_path / "outputs"
    for seed, value in ((0, 0.5), (1, 0.6), (2, 0.7)):
        write_run(
            out,
            f"cmmd_seed{seed}",
            {
                **calibrated(value, value - 0.05, value + 0.05),
                "seed": seed,
                "variant": "coupling=easy_fusion, eta=0.02",
            },
        )
        low = value - 0.2 + 0.01 * seed  # lower by about 0.2 on every seed
        write_run(
            out,
            f"ncmmd_seed{seed}",
            {**calibrated(low, low - 0.05, low + 0.05), "seed": seed, "variant": "coupling=easy_fusion, eta=0.0"},
        )
    for seed, value in ((0, 0.3), (1, 0.5)):
        write_run(
            out, f"two_seeds_{seed}", {**calibrated(value, value - 0.05, value + 0.05), "seed": seed, "variant": "two"}
        )
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    # 3 seeds: mean with the t interval (t_0.975,2 = 4.303, sd 0.1: half-width 0.248), before the run table
    assert "| cmmd (coupling=easy_fusion, eta=0.02) | 0, 1, 2 | 0.600 [0.352, 0.848] |" in report
    assert report.index("[0.352, 0.848]") < report.index("## Runs") < report.index("| cmmd_seed0 |")
    assert "| cmmd (two) | 0, 1 | 0.400 ± 0.141 |" in report  # 2 seeds: the spread only
    diff = next(
        line
        for line in report.splitlines()
        if line.startswith("| cmmd (coupling=easy_fusion, eta=0.0) - cmmd (coupling=easy_fusion, eta=0.02)")
    )
    assert "| temporal_f1 | 3 | -0.190 [-0.215, -0.165] | resolved |" in diff


def test_a_named_rescoring_gets_its_own_report(tmp_path):
    out = tmp_path / "outputs"
    for name in ("a", "b"):
        write_run(out, name, {"dataset": "synthetic", "method": "cmmd", "temporal_f1": 0.4})
    (out / "a" / "test_conditional").mkdir()
    (out / "a" / "test_conditional" / "metrics.json").write_text(json.dumps({"v2a_lag_contrast": 0.31}))
    assert (
        main(
            [
                "compare",
                f"paths.output_dir={out}",
                "scores_from=test_conditional",
                "only_rescored=true",
                "report_name=conditional",
                "runs=all",
            ]
        )
        == 0
    )
    report = (out / "compare" / "synthetic_conditional.md").read_text()
    assert "0.310" in report and "| b |" not in report and "test_conditional/metrics.json" in report
    assert not (out / "compare" / "synthetic.md").exists()


def test_report_gives_paired_distance_differences_from_kept_features(tmp_path):
    """Two runs with their FVD features against one reference: the planted shift resolves, and a run whose
    reference differs (another protocol) gets no paired difference."""
    import torch

    from avgen.metrics.stats import paired_distance_difference

    out = tmp_path / "outputs"
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(96, 1, 8, generator=g)
    close = torch.randn(96, 1, 8, generator=g)
    runs = {"close": (reference, close), "far": (reference, close + 0.5), "other_ref": (reference + 1, close)}
    for name, (ref, gen) in runs.items():
        write_run(out, name, {"dataset": "landscape", "method": name, "fvd": 1.0, "kvd": 0.1})
        torch.save({"fvd": {"reference": ref, "generated": gen}}, out / name / "distance_features.pt")
    assert main(["compare", f"paths.output_dir={out}", "runs=all"]) == 0
    report = (out / "compare" / "landscape.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith(("| fvd |", "| kvd |"))]
    assert [r.split(" | ")[:3] for r in rows] == [["| fvd", "close", "far"], ["| kvd", "close", "far"]], rows
    expected = paired_distance_difference(reference, close, close + 0.5, "fd")
    assert expected.high < 0 and f"{expected.difference:+.3f}" in rows[0] and rows[0].endswith("| yes |")


def test_by_default_the_report_holds_the_registry_runs_and_names_the_rest(tmp_path):
    """A 20-step trial beside the registered runs: left out by default and named; RUNS/EXCLUDE globs choose."""
    out = tmp_path / "outputs"
    for name in ("cmmd_synthetic", "cmmd_synthetic_seed1", "ncmmd_synthetic", "wandb_trial"):
        write_run(out, name, {"dataset": "synthetic", "method": "cmmd", "temporal_f1": 0.4})
    assert main(["compare", f"paths.output_dir={out}"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "| cmmd_synthetic_seed1 |" in report and "| wandb_trial |" not in report
    assert "**Runs left out** (not in configs/suite/synthetic.yaml;" in report and "wandb_trial." in report
    assert main(["compare", f"paths.output_dir={out}", "runs=[cmmd_*]", "exclude=[*_seed1]"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "| cmmd_synthetic |" in report and "| ncmmd_synthetic |" not in report
    assert "| cmmd_synthetic_seed1 |" not in report and "excluded: *_seed1" in report
