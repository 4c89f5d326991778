"""Every configured method follows methods/base.py; nothing downstream probes methods with hasattr/inspect."""

from __future__ import annotations

import subprocess

from hydra.utils import get_class

from avgen.config import experiment_names, load_config
from avgen.methods.base import Method


def test_every_experiments_method_implements_the_contract():
    for name in experiment_names():
        cfg = load_config("train", experiment=name)
        cls = get_class(cfg.method._target_)
        assert issubclass(cls, Method), (name, cls)
        assert isinstance(cls.variant(cfg), str)


def test_the_contract_is_read_not_probed():
    """evaluation, sampling, callbacks and commands ask the contract, not the module's attributes."""
    found = subprocess.run(["grep", "-rnE", r"hasattr\(module|getattr\(module|inspect\.signature\(module",
                            "src/avgen/evaluation", "src/avgen/cli", "src/avgen/callbacks"],
                           capture_output=True, text=True).stdout
    assert found == "", found
