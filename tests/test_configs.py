"""Every config composes in struct mode and builds; misspelt keys fail, naming the key."""

from __future__ import annotations

import shutil

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from avgen.config import experiment_names, load_config, repo_root
from avgen.methods.base import Trainable
from avgen.suite import load_suite

ROOT = repo_root()


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "configs" / group).glob("*.yaml"))


@pytest.mark.parametrize("dataset", group_options("dataset"))
@pytest.mark.parametrize("preset", group_options("preset"))
def test_prepare_configs_compose_and_build(dataset, preset, tmp_path, tiny_vaes):
    cfg = load_config(
        "prepare",
        [
            f"dataset={dataset}",
            f"preset={preset}",
            f"raw={tmp_path}",
            f"out={tmp_path}",
            f"vae_path={tiny_vaes['video']}",
            f"audioldm_path={tiny_vaes['audioldm']}",
        ],
    )
    assert OmegaConf.is_struct(cfg)
    assert instantiate(cfg.dataset).name == dataset
    reps = {name: instantiate(node) for name, node in cfg.preset.representations.items()}
    assert {r.modality for r in reps.values()} == {"video", "audio"}
    instantiate(cfg.preset.windowing)


@pytest.mark.parametrize("data", group_options("data"))
def test_data_configs_compose(data):
    cfg = load_config("bench", [f"data={data}"])
    dm = instantiate(cfg.data)
    assert dm.batch_size > 0


def test_misspelt_override_fails_naming_the_key():
    with pytest.raises(ValueError, match="unknown config key dataset.num_trian; did you mean dataset.num_train?"):
        load_config("prepare", ["dataset.num_trian=3"])


def test_reading_an_unknown_key_fails():
    cfg = load_config("prepare")
    with pytest.raises((ConfigAttributeError, ConfigKeyError)):
        _ = cfg.dataset.num_trian


def test_misspelt_key_in_an_experiment_file_fails(tmp_path, monkeypatch):
    """An experiment file may only override keys that exist."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "bad.yaml").write_text("# @package _global_\ndataset:\n  num_trian: 3\n")
    (tmp_path / "experiments" / "good.yaml").write_text("# @package _global_\ndataset:\n  num_train: 3\n")
    monkeypatch.setenv("AVGEN_ROOT", str(tmp_path))
    assert load_config("prepare", experiment="good").dataset.num_train == 3
    with pytest.raises(ConfigCompositionException) as err:
        load_config("prepare", experiment="bad")
    assert "num_trian" in str(err.value.__cause__ or err.value)


def test_unknown_experiment_is_named():
    with pytest.raises(ValueError, match="no_such_experiment"):
        load_config("prepare", experiment="no_such_experiment")


@pytest.mark.parametrize("name", experiment_names())
def test_every_experiment_composes_and_builds(name, tmp_path, request):
    cfg = load_config("train", [f"paths.output_dir={tmp_path}"], experiment=name)  # no local runs leak in
    assert OmegaConf.is_struct(cfg) and cfg.name == name
    if name in load_suite("synthetic").runs:  # the synthetic comparison's one budget (budget/synthetic_cpu)
        assert cfg.method.optimizer.lr == 5.0e-4, name
    cls = get_class(cfg.method._target_)  # what the registry's readers use (suite.method_of)
    assert issubclass(cls, Trainable) and isinstance(cls.variant(cfg), str), name
    assert all(isinstance(ckpt, str) for ckpt in cls.start_checkpoints(cfg.method)), name
    net = instantiate(cfg.model)
    bases = cfg.method.get("bases")
    if bases is not None and bases.get("text") is not None:  # out of domain: the pipeline paths are required
        assert set(OmegaConf.missing_keys(cfg)) == {"method.bases.text.audio", "method.bases.text.video"}
        pipelines = request.getfixturevalue("tiny_pipelines")
        bases.text.audio, bases.text.video = str(pipelines["audio"]), str(pipelines["video"])
        with pytest.raises(Exception, match="model.text_dims"):  # the paper's CLAP/CLIP widths, not the tiny ones
            instantiate(cfg.method, net=net)
    elif bases is not None:  # MMDisCo: without trained bases the build stops, naming the prerequisites
        prereq = "make train EXP=cmmd_" if bases.joint else "make train EXP=base_"
        with pytest.raises(Exception, match=prereq):  # Hydra wraps it in InstantiationException
            instantiate(cfg.method, net=net)
    else:
        module = instantiate(cfg.method, net=net, **({"init_from": None} if "init_from" in cfg.method else {}))
        assert module.net is net
    instantiate(cfg.data)
    for callback in cfg.callbacks.values():
        instantiate(callback)
