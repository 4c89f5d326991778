"""W&B, offline: a run's files, its metrics under the shared keys, its grouping, and no secrets."""

from __future__ import annotations

import warnings

import pytest

from avgen.cli.main import main


def settled_record(path, *needed: bytes, timeout: float = 60.0) -> bytes:
    """An offline run's record log once it holds everything `needed`: wandb's service writes it
    asynchronously, and on a loaded machine the file may still be filling after `finish()` returns."""
    import time

    deadline = time.time() + timeout
    while True:
        record = path.read_bytes()
        if all(n in record for n in needed) or time.time() > deadline:
            return record
        time.sleep(0.5)


@pytest.mark.slow
def test_wandb_offline_run(synthetic_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # must never be written anywhere
    out = tmp_path / "run"
    common = [
        "experiment=cmmd_synthetic",
        "logger=wandb",
        f"data.store={synthetic_store}",
        f"output_dir={out}",
        "model.base_channels=8",
        "model.head_dim=8",
        "data.batch_size=4",
        "+logger.settings.mode=offline",
        "evaluate.num_samples=4",
        "evaluate.num_videos=1",
        "evaluate.batch_size=4",
        "sampler.steps=2",
        "evaluate.num_video_to_audio=0",
        "threads=1",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(
            [
                "train",
                *common,
                "trainer.max_steps=3",
                "trainer.log_every_n_steps=1",
                "trainer.val_check_interval=2",
                "trainer.limit_val_batches=1",
                "trainer.enable_progress_bar=false",
            ]
        )
    said = capsys.readouterr()
    assert not any("anonymous" in str(w.message) for w in caught) and "anonymous" not in said.out + said.err
    assert rc == 0
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1, list(out.rglob("*"))[:20]
    # wandb (>= 0.19) keeps an offline run as one protobuf record log, read by `wandb sync`; its strings are
    # stored verbatim, so the keys, the config values and the run's grouping can be checked in it
    record = settled_record(runs[0], b"train/loss", b"val/samples", b"run/steps")
    for text in (
        "train/loss",
        "val/temporal_alignment",
        "val/semantic_agreement",
        "cmmd_synthetic",
        "base_channels",
        "synthetic",
        "coupling=easy_fusion",
        "cmmd (coupling=easy_fusion, eta=0.02, weighting=per_modality)",  # the job type: method and variant
    ):
        assert text.encode() in record, text
    logged = (out / "config.yaml").read_text()
    assert "group: synthetic" in logged
    assert "job_type: cmmd (coupling=easy_fusion, eta=0.02, weighting=per_modality)" in logged
    # validation media: written under the run and logged (wandb copies media into the run's files)
    assert sorted(p.name for p in (out / "val_media" / "step_0000002").iterdir()) == [
        "sample_0.mp4",
        "sample_1.mp4",
        "spectrogram_0.png",
        "spectrogram_1.png",
    ]
    media = [p.suffix for p in (out / "wandb").glob("offline-run-*/files/media/**/*") if p.is_file()]
    assert media.count(".mp4") == 2 and media.count(".png") == 2, media
    assert b"val/samples" in record and b"val/spectrograms" in record
    # avgen eval logs its re-scored metrics as a run of its own, beside the training run
    assert main(["eval", *common]) == 0
    evals = list((out / "eval" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(evals) == 1 and b"val/temporal_alignment" in settled_record(evals[0], b"val/temporal_alignment")
    assert b"cmmd_synthetic-eval" in evals[0].read_bytes()
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".mp4")
    assert b"x" * 40 not in everything  # the API key is nowhere: not in the run, the config or checkpoints


def test_secret_looking_keys_are_redacted():
    from avgen.utils.io import redact

    cfg = {"logger": {"api_key": "abc", "project": "p"}, "x": [{"Token": "t", "ok": 1}], "password": None}
    assert redact(cfg) == {
        "logger": {"api_key": "<redacted>", "project": "p"},
        "x": [{"Token": "<redacted>", "ok": 1}],
        "password": None,
    }


def test_the_dashboard_layout_is_built_offline(tmp_path):
    """`avgen wandb-report`: the workspace (metrics side by side, the sample grid, the loss curves, the
    dataset's group) built with wandb-workspaces and serialised without the network."""
    import json

    from test_compare import write_run

    from avgen.evaluation.wandb_compare import SAMPLES_TABLE

    out = tmp_path / "outputs"
    for name in ("cmmd_synthetic", "ncmmd_synthetic"):
        write_run(out, name, {"dataset": "synthetic", "method": "cmmd", "temporal_f1": 0.4, "lag_contrast": 0.2})
    assert main(["wandb-report", f"paths.output_dir={out}", "dataset_name=synthetic"]) == 0
    layout = json.loads((out / "compare" / "synthetic_wandb_workspace.json").read_text())
    text = json.dumps(layout)
    for key in ("val/temporal_f1", "val/lag_contrast", SAMPLES_TABLE, "train/loss", "synthetic"):
        assert key in text, key
    assert layout["spec"]["section"]["panelBankConfig"]["sections"][0]["name"].startswith("synthetic: metrics")


@pytest.mark.slow
def test_compare_logs_its_tables_to_an_offline_run(tmp_path, monkeypatch):
    from test_compare import write_run
    from test_html_report import clip

    from avgen.decoding.export import write_sample

    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "outputs"
    for k, name in enumerate(("cmmd_synthetic", "ncmmd_synthetic")):
        write_run(
            out, name, {"dataset": "synthetic", "method": "cmmd", "variant": f"v{k}", "temporal_f1": 0.4 - k / 10}
        )
        (out / name / "samples").mkdir()
        write_sample(out / name / "samples" / "sample_000.mp4", *clip(k), fps=8, sample_rate=8000)
    assert main(["compare", f"paths.output_dir={out}", "wandb.log=true"]) == 0
    records = list((out / "compare" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(records) == 1
    record = settled_record(records[0], b"compare/metrics", b"compare/paired", b"compare/samples")
    for text in ("compare/metrics", "compare/paired", "compare/samples", "compare-synthetic", "temporal_f1"):
        assert text.encode() in record, text
    # the sample grid's videos travel in the table's run artifact (staged offline, uploaded by `wandb sync`)
    import re

    videos = set(re.findall(rb"media/videos/[0-9a-f]+/sample_000\.mp4", record))
    assert len(videos) == 2, videos  # one cell per run
