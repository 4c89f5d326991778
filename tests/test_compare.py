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
    write_run(out, "cmmd_synthetic", {"dataset": "synthetic", "method": "cmmd", "variant": "coupling=easy_fusion, eta=0.02",
                                      "temporal_alignment": 0.663, "temporal_alignment_shuffled": 0.511,
                                      "semantic_agreement": 0.391, "parameters": 1_234_567, "train_seconds": 690.0,
                                      "ms_per_fe": 41.5, "steps": 1600}, losses=[1.0, 0.5, 0.25])
    write_run(out, "mmdisco_synthetic", {"dataset": "synthetic", "method": "mmdisco", "variant": "head=mlp",
                                         "temporal_alignment": 0.60, "semantic_agreement": 0.30,
                                         "no_joint_temporal_alignment": 0.548, "no_joint_semantic_agreement": 0.203,
                                         "parameters": 100_000, "train_seconds": 449.0, "steps": 1000},
              losses=[0.7, 0.6])
    write_run(out, "cmmd_aistpp", {"dataset": "aistpp", "method": "cmmd", "fvd": 300.0})
    write_run(out, "vocoder_melgan_synthetic", {"dataset": "synthetic", "method": "vocoder", "variant": "",
                                                "mel_l1": 0.21, "mel_l1_griffin_lim": 0.17, "parameters": 1_500_000})
    (out / "broken").mkdir()
    (out / "broken" / "metrics.json").write_text("{not json")
    assert main(["compare", f"paths.output_dir={out}", "dataset_name=synthetic"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| run | method | temporal_alignment | semantic_agreement |")
    body = "\n".join(lines[1:])
    assert "| cmmd_synthetic | cmmd (coupling=easy_fusion, eta=0.02) | 0.663 (0.511) | 0.391 |" in body
    assert "| mmdisco_synthetic (no joint: independent bases) | independent bases, guidance off | 0.548 | 0.203 |" in body
    assert "1.23M" in body and "11.5 min" in body and "cmmd_aistpp" not in report and "fvd" not in report
    assert "chance level" in report
    # the vocoder is not a generative row: its own table, its numbers nowhere among the metric columns
    assert "| vocoder_melgan_synthetic | 0.210 | 0.170 | 1.50M |" in report.split("## Vocoders")[1]
    assert "mel_l1" not in lines[0]
    for png in ("synthetic_metrics.png", "synthetic_curves.png"):
        assert (out / "compare" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png})" in report
    assert "skipping" in capsys.readouterr().out


def test_compare_without_runs_names_what_to_do(tmp_path, capsys):
    assert main(["compare", f"paths.output_dir={tmp_path}"]) == 2
    assert "make train" in capsys.readouterr().err


def test_rescored_metrics_take_precedence(tmp_path):
    out = tmp_path / "outputs"
    write_run(out, "run", {"dataset": "synthetic", "method": "mmdisco", "temporal_alignment": 0.1, "train_seconds": 60.0})
    (out / "run" / "eval").mkdir()
    (out / "run" / "eval" / "metrics.json").write_text(json.dumps({"temporal_alignment": 0.5}))
    assert main(["compare", f"paths.output_dir={out}"]) == 0
    report = (out / "compare" / "synthetic.md").read_text()
    assert "| 0.500 |" in report and "1.0 min" in report and "0.100" not in report
