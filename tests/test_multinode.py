"""The README's torchrun line, as 2 "nodes" of one CPU process each on 127.0.0.1 (gloo): both train, their
weights agree, and one metrics.json is written (slow)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from avgen.suite import smoke_overrides


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_by_torchrun_train_one_run(synthetic_store, tmp_path):
    port, out = free_port(), tmp_path / "outputs"
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=avgen-test",
    ]
    train = [
        "-m",
        "avgen.cli.main",
        "train",
        "experiment=cmmd_synthetic",
        "trainer=multinode",
        "trainer.num_nodes=2",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.precision=32-true",
        *smoke_overrides("cmmd_synthetic"),
        f"data.store={synthetic_store}",
        f"paths.output_dir={out}",
        "threads=1",
    ]
    nodes = [
        subprocess.Popen([*launcher, *train], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    run = out / "cmmd_synthetic"
    replicas = json.loads((run / "replicas.json").read_text())
    assert replicas["world_size"] == 2 and len(set(replicas["checksums"])) == 1
    assert len(list(out.rglob("metrics.json"))) == 1 and json.loads((run / "metrics.json").read_text())["steps"] > 0
