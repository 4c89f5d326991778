"""`avgen bench`'s own speed figures (data loading, preparation, the U-Net per coupling, the vocoders); the
other benches live beside them (`lightning`, `before_after`) or in their method's folder. configs/bench.yaml
names them all."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from avgen.config import load_config
from avgen.utils.timing import interleaved, medians


def bench_data(cfg: DictConfig) -> dict[str, float]:
    dm = instantiate(cfg.data, margin_seconds=cfg.data_margin_seconds)
    dm.setup("fit")
    loader = dm.train_dataloader()
    next(iter(loader))  # open the memory maps before timing
    clips, t = 0, time.perf_counter()
    for _ in range(cfg.data_epochs):
        for batch in loader:
            clips += batch["video"].shape[0]
    return {"data_clips_per_s": clips / (time.perf_counter() - t)}


def bench_prepare(cfg: DictConfig) -> dict[str, float]:
    from avgen.data.prepare.pipeline import prepare
    from avgen.data.synthetic import generate

    pcfg = load_config("prepare")
    reps = {name: instantiate(node) for name, node in pcfg.preset.representations.items()}
    windowing = instantiate(pcfg.preset.windowing)
    adapter = instantiate(pcfg.dataset, num_train=cfg.prepare_clips, num_test=0, num_val=0, generate_missing=False)
    with tempfile.TemporaryDirectory() as tmp:
        generate(adapter.config, Path(tmp) / "raw", progress=False)
        t = time.perf_counter()
        report = prepare(adapter, Path(tmp) / "raw", Path(tmp) / "store", reps, windowing, progress=False)
        seconds = time.perf_counter() - t
    return {"prepare_clips_per_s": report["clips_written"] / seconds}


def bench_unet(cfg: DictConfig) -> dict[str, float]:
    """Paper-size networks on a CMMD-shaped input (18 frames of 4x16x16 latents, an 80x112 mel), batch 1:
    the dual U-Net with each coupling and the dual-stream transformer (flow matching) with each coupling,
    all interleaved so that the overhead ratios survive a busy machine."""
    import torch

    x = {"video": torch.randn(1, 18, 4, 16, 16), "audio": torch.randn(1, 80, 112)}
    nets = {}
    unet_cfg = load_config("train", [f"model={cfg.unet_model}", "name=bench"]).model
    for coupling in ("none", "easy_fusion", "rs_mma"):
        nets[f"unet_ms_per_fe_{coupling}"] = (
            instantiate(unet_cfg, coupling=coupling, video_channels=4, audio_channels=80).eval(),
            torch.tensor([500]),
        )
    dit_cfg = load_config("train", [f"model={cfg.dit_model}", "name=bench"]).model
    for coupling in ("none", "joint", "cross"):
        nets[f"dit_ms_per_fe_{coupling}"] = (instantiate(dit_cfg, coupling=coupling).eval(), torch.tensor([500.0]))

    def call(net, t):
        return lambda: net(x, t)

    with torch.inference_mode():
        times = interleaved({name: call(*nt) for name, nt in nets.items()}, cfg.unet_repeats, warmup=2)
    results = medians(times, "")
    for family, base in (("unet", "none"), ("dit", "none")):
        for coupling in ("easy_fusion", "rs_mma") if family == "unet" else ("joint", "cross"):
            ratios = [
                a / b for a, b in zip(times[f"{family}_ms_per_fe_{coupling}"], times[f"{family}_ms_per_fe_{base}"])
            ]
            name = f"{coupling}_overhead" if family == "unet" else f"dit_{coupling}_overhead"
            results[name] = results[f"{family}_ms_per_fe_{coupling}"] / results[f"{family}_ms_per_fe_{base}"] - 1
            results[f"{name}_spread"] = max(ratios) - min(ratios)  # of the per-round ratios
    return results


def bench_vocoder(cfg: DictConfig) -> dict[str, float]:
    """Seconds to decode `vocoder_mels` mels of the synthetic store: librosa's per-clip Griffin-Lim (the former
    default), batched Griffin-Lim on the CPU, and band synthesis; interleaved, medians and spreads."""
    import statistics

    import numpy as np

    from avgen.data.store import Store
    from avgen.decoding.band_synth import BandSynth
    from avgen.decoding.export import GriffinLim
    from avgen.decoding.griffin_lim import BatchedGriffinLim

    store = Store(instantiate(cfg.data).store_path)
    rep = store.representations["audio_mel"]
    idx = store.indices("test")[: cfg.vocoder_mels]
    mels = np.stack(
        [store.array("audio_mel")[i][:, rep.margin_frames : rep.margin_frames + rep.clip_frames] for i in idx]
    ).astype(np.float32)
    librosa_gl, batched_gl = GriffinLim.from_metadata(rep.meta), BatchedGriffinLim.from_metadata(rep.meta, device="cpu")
    synth = BandSynth.from_metadata(rep.meta)
    times = interleaved(
        {
            "librosa": lambda: [librosa_gl(m) for m in mels],
            "batched": lambda: batched_gl.batch(mels),
            "band_synth": lambda: synth.batch(mels),
        },
        cfg.vocoder_rounds,
    )
    out = {}
    for name, ts in times.items():
        out[f"vocoder_{name}_s_per_{len(mels)}"] = statistics.median(ts)
        out[f"vocoder_{name}_spread_s"] = max(ts) - min(ts)
    out["vocoder_batched_speedup"] = statistics.median(times["librosa"]) / statistics.median(times["batched"])
    return out
