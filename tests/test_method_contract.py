"""The method contract (methods/base.py), checked on every method of the suite registry (configs/suite/): one
class of tests run on each registered method instead of hand-written copies per method (diffusers' common
scheduler tests are the model). Fast: the class check, per-index seed pairing, shapes, the no-coupling
baseline, the checkpoint round trip. Slow: kill-and-resume, DDP + bf16, torch.compile, through the command
line. Every run uses the registry's smoke sizes (`debug=smoke`), in a folder of its own."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from avgen.cli.main import main
from avgen.config import experiment_names
from avgen.methods.base import DenoisingMethod, Method
from avgen.suite import entries, representatives, smoke_overrides, upstream

METHODS = representatives("synthetic", methods_only=True)


def workspace(root: Path, store: Path) -> list[str]:
    """Overrides that put a run's data (the test store behind paths.data_dir) and outputs under `root`."""
    data = root / "data" / "synthetic"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("store", "raw"):
        if not (data / name).exists():
            (data / name).symlink_to(store.parent / name)
    return [f"paths.data_dir={root / 'data'}", f"paths.output_dir={root / 'outputs'}"]


def train_args(experiment: str, root: Path, store: Path, *extra: str) -> list[str]:
    return ["train", f"experiment={experiment}", *smoke_overrides(experiment), *workspace(root, store), *extra]


@pytest.fixture(scope="module")
def trained(synthetic_store, tmp_path_factory):
    """Every registered method trained a few steps (after what it starts from), in one workspace."""
    root = tmp_path_factory.mktemp("contract")
    for experiment in representatives("synthetic"):
        assert main(train_args(experiment, root, synthetic_store)) == 0, experiment
    return root, synthetic_store


def loaded(experiment: str, root: Path, store: Path):
    from avgen.experiment import load_trained

    overrides = [*smoke_overrides(experiment), *workspace(root, store)]
    cfg, dm, module, _, _ = load_trained(experiment, overrides)
    return cfg, dm, module.eval()


def sample(module, dm, seeds: list[int], **kwargs) -> dict[str, torch.Tensor]:
    from avgen.data.datamodule import clip_shapes

    shapes = {m: (len(seeds), *s) for m, s in clip_shapes(dm).items()}
    return module.generate(shapes, steps=2, seeds=seeds, **kwargs)


# ------------------------------------------------------------------------------------------- the contract
def test_an_incomplete_method_fails_at_its_class_statement():
    with pytest.raises(
        TypeError,
        match=r"Half does not implement the DenoisingMethod contract.*`denoising_loss`"
        r".*`prediction`",
    ):

        class Half(DenoisingMethod):  # noqa: F841 - defining it is the test
            name = "half"

            def training_step(self, batch, batch_idx): ...

            def configure_optimizers(self): ...

            @staticmethod
            def variant(cfg):
                return ""

    with pytest.raises(TypeError, match=r"`name`.*`generate`"):

        class Nameless(Method):  # noqa: F841
            def training_step(self, batch, batch_idx): ...

            def configure_optimizers(self): ...

            @staticmethod
            def variant(cfg):
                return ""


def test_every_experiment_is_registered_once():
    """(Each experiment's class is checked where it is composed: test_configs.)"""
    assert sorted(entries()) == experiment_names()  # the README's table is generated from the registry


def test_the_synthetic_suite_shares_one_budget():
    """Every run of the synthetic comparison composes the registry's budget group, so runs differ by method."""
    from omegaconf import OmegaConf

    from avgen.suite import load_suite

    suite = load_suite("synthetic")
    for experiment in suite.runs:
        body = OmegaConf.load(Path(__file__).parents[1] / "experiments" / f"{experiment}.yaml")
        assert {"override /budget": suite.budget} in [dict(d) for d in body.defaults if not isinstance(d, str)], (
            experiment
        )  # (test_configs checks the composed budget: lr 5e-4)


def test_the_contract_is_read_not_probed():
    """evaluation, sampling, callbacks and commands ask the contract, not the module's attributes."""
    found = subprocess.run(
        [
            "grep",
            "-rnE",
            r"hasattr\(module|getattr\(module|inspect\.signature\(module",
            "src/avgen/evaluation",
            "src/avgen/cli",
            "src/avgen/callbacks",
        ],
        capture_output=True,
        text=True,
    ).stdout
    assert found == "", found


def test_the_upstream_chain_comes_from_the_methods():
    assert upstream("mmdisco_synthetic") == ["base_audio_synthetic", "base_video_synthetic"]
    assert upstream("cmmd_aistpp") == ["ncmmd_aistpp"]
    assert upstream("mmdisco_aistpp_cmmd") == ["ncmmd_aistpp", "cmmd_aistpp"]
    assert upstream("cmmd_synthetic") == []


# ------------------------------------------------------------------------------------ per registered method
@pytest.mark.parametrize("experiment", METHODS)
class TestRegisteredMethod:
    def test_samples_are_paired_by_index_and_shaped_like_the_clips(self, trained, experiment):
        from avgen.data.datamodule import clip_shapes

        _, dm, module = loaded(experiment, *trained)
        together = sample(module, dm, [3, 4])
        alone = sample(module, dm, [4])
        for m, shape in clip_shapes(dm).items():
            assert together[m].shape == (2, *shape) and torch.isfinite(together[m]).all()
            torch.testing.assert_close(alone[m][0], together[m][1], rtol=1e-4, atol=1e-5)
        assert set(module.modalities) == {"audio", "video"} and module.joint

    def test_the_no_coupling_baseline_comes_from_the_same_weights(self, trained, experiment):
        _, dm, module = loaded(experiment, *trained)
        baseline = module.baseline_settings()
        if baseline is None:  # the baseline is its own run (coupling none), registered beside it
            return
        a, b = sample(module, dm, [5], **baseline), sample(module, dm, [5], **baseline)
        guided = sample(module, dm, [5])
        for m in a:
            torch.testing.assert_close(a[m], b[m])
        assert any(not torch.allclose(a[m], guided[m]) for m in a)  # the coupling acts

    def test_the_checkpoint_round_trips(self, trained, experiment):
        cfg, dm, module = loaded(experiment, *trained)
        ckpt = torch.load(Path(cfg.output_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        state = module.state_dict()
        for k, v in ckpt["state_dict"].items():
            torch.testing.assert_close(state[k], v, rtol=0, atol=0, msg=k)
        metrics = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())
        assert metrics["method"] == type(module).name and metrics["modalities"] == list(module.modalities)
        _, _, again = loaded(experiment, *trained)
        first, second = sample(module, dm, [7]), sample(again, dm, [7])
        for m in first:
            torch.testing.assert_close(first[m], second[m], rtol=0, atol=0)

    @pytest.mark.slow
    def test_a_killed_run_resumes_to_the_same_weights(self, synthetic_store, tmp_path, experiment):
        """SIGKILL a run after its first checkpoint, resume it: the weights (and EMA), the training clock and
        the counted compute equal an uninterrupted run's."""
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        for parent in upstream(experiment):  # shared by both runs
            assert main(train_args(parent, tmp_path, synthetic_store)) == 0

        def cmd(name, *extra):
            return [
                sys.executable,
                "-m",
                "avgen.cli.main",
                *train_args(experiment, tmp_path, synthetic_store),
                f"name={name}",
                "trainer.max_steps=40",
                "trainer.val_check_interval=1000",
                "callbacks.checkpoint.every_n_train_steps=8",
                "callbacks.flops.every_n_steps=5",
                *extra,
            ]

        subprocess.run(cmd("straight"), check=True, env=env, capture_output=True)
        killed = subprocess.Popen(cmd("killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = tmp_path / "outputs" / "killed" / "checkpoints" / "last.ckpt"
        deadline = time.time() + 300
        while not last.exists() and killed.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        at_kill = torch.load(last, weights_only=True)
        assert 0 < at_kill["global_step"] < 40  # killed mid-run
        subprocess.run(cmd("killed", "resume=true"), check=True, env=env, capture_output=True)
        runs = {
            n: torch.load(tmp_path / "outputs" / n / "checkpoints" / "last.ckpt", weights_only=True)
            for n in ("straight", "killed")
        }
        assert runs["straight"]["global_step"] == runs["killed"]["global_step"]
        assert runs["straight"]["state_dict"].keys() == runs["killed"]["state_dict"].keys()
        for k, v in runs["straight"]["state_dict"].items():
            torch.testing.assert_close(runs["killed"]["state_dict"][k], v, rtol=0, atol=0, msg=k)
        metrics = {n: json.loads((tmp_path / "outputs" / n / "metrics.json").read_text()) for n in runs}
        assert metrics["killed"]["train_seconds"] > at_kill["callbacks"]["TrainingClock"]["seconds"] > 0
        assert metrics["killed"]["train_tflops"] == pytest.approx(metrics["straight"]["train_tflops"], rel=1e-9)

    @pytest.mark.slow
    def test_ddp_bf16_keeps_the_replicas_identical(self, synthetic_store, tmp_path, experiment):
        """2 CPU processes (gloo), bf16-mixed, through the command line: finite losses, identical weights on
        both ranks (MMDisCo: its double backward under DDP), no process left behind."""
        for parent in upstream(experiment):
            assert main(train_args(parent, tmp_path, synthetic_store)) == 0
        cmd = [
            sys.executable,
            "-m",
            "avgen.cli.main",
            *train_args(experiment, tmp_path, synthetic_store),
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.strategy=ddp",
            "trainer.precision=bf16-mixed",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        out = tmp_path / "outputs" / experiment
        leftover = subprocess.run(
            ["pgrep", "-f", f"paths.output_dir={tmp_path}"], capture_output=True, text=True
        ).stdout.split()
        assert not leftover, f"processes left behind: {leftover}"
        replicas = json.loads((out / "replicas.json").read_text())
        assert replicas["world_size"] == 2 and replicas["step"] == 4
        assert len(set(replicas["checksums"])) == 1
        with open(out / "logs" / "metrics.csv") as f:
            losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
        assert len(losses) == 4 and all(math.isfinite(x) for x in losses)

    @pytest.mark.slow
    def test_compile_true_trains_and_keeps_the_checkpoint_keys(self, synthetic_store, tmp_path, experiment, capsys):
        for parent in upstream(experiment):
            assert main(train_args(parent, tmp_path, synthetic_store)) == 0
        assert (
            main(
                [
                    *train_args(experiment, tmp_path, synthetic_store),
                    "trainer.max_steps=2",
                    "compile=true",
                    "compile_backend=aot_eager",
                ]
            )
            == 0
        )
        assert "compile=true: compiled" in capsys.readouterr().out
        out = tmp_path / "outputs" / experiment
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["steps"] == 2 and "gflops_per_step" not in metrics  # the counter would see compiled kernels
        ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert not any("_orig_mod" in k for k in ckpt["state_dict"])  # the plain networks' keys


def test_transformers_log_tokens_per_second(trained):
    """The throughput logs add tokens/s where the method's network works on tokens (the flow transformer)."""
    root, _ = trained

    def header(experiment: str) -> str:
        return (root / "outputs" / experiment / "logs" / "metrics.csv").read_text().splitlines()[0]

    assert "perf/tokens_per_s" in header("flowdit_synthetic") and "perf/samples_per_s" in header("cmmd_synthetic")
    assert "perf/tokens_per_s" not in header("cmmd_synthetic")
