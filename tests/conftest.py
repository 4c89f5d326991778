from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra.utils import instantiate

from avgen.utils.numba_cache import configure as configure_numba_cache
from avgen.utils.threads import set_torch_threads

configure_numba_cache()  # as every avgen command does before librosa is imported
set_torch_threads()
os.environ.setdefault("WANDB_MODE", "offline")
# the tests' tiny runs must not become the user's forecasts (utils/timings.py)
os.environ["AVGEN_TIMINGS_FILE"] = os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"avgen_test_timings_{os.getpid()}.json"
)


@pytest.fixture(scope="session")
def synthetic_preset():
    """The default synthetic preset's representations and windowing, built from configs/."""
    from avgen.config import load_config

    cfg = load_config("prepare")
    reps = {name: instantiate(node) for name, node in cfg.preset.representations.items()}
    return cfg, reps, instantiate(cfg.preset.windowing)


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory, synthetic_preset) -> Path:
    """A small synthetic dataset (48 train, 40 test, 8 validation clips) generated and prepared through the
    real path."""
    from avgen.data.prepare.pipeline import prepare

    cfg, reps, windowing = synthetic_preset
    root = tmp_path_factory.mktemp("synthetic")
    adapter = instantiate(cfg.dataset, num_train=48, num_test=40, num_val=8)
    prepare(adapter, root / "raw", root / "store", reps, windowing, progress=False)
    return root / "store"


@pytest.fixture(scope="session")
def tiny_vaes(tmp_path_factory) -> dict[str, Path]:
    """Random AutoencoderKLs built from config: an SD-VAE-like one (x2) and an AudioLDM pipeline dir (vae/, x4)."""
    from media_helpers import tiny_vae

    root = tmp_path_factory.mktemp("vaes")
    return {
        "video": tiny_vae(root / "sd_vae"),
        "audioldm": tiny_vae(
            root / "audioldm" / "vae", in_channels=1, latent_channels=8, levels=3, scaling_factor=0.9
        ).parent,
    }


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory) -> Path:
    """A random transformers CLAP directory (avgen.testing.tiny), as a user's local checkpoint would be."""
    from avgen.testing.tiny import tiny_clap as build

    return build(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="session")
def synthetic_raw(synthetic_store) -> Path:
    """The generated media files behind `synthetic_store` (train/*.mp4, test/*.mp4)."""
    return synthetic_store.parent / "raw"


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory) -> dict[str, Path]:
    """Random AudioLDM- and AnimateDiff-layout pipeline directories (avgen.testing.tiny, as `make smoke-ood`)."""
    from avgen.testing.tiny import tiny_animatediff, tiny_audioldm

    root = tmp_path_factory.mktemp("pipelines")
    return {"audio": tiny_audioldm(root / "audioldm"), "video": tiny_animatediff(root / "animatediff")}
