"""`avgen bench`: speed figures, measured in one run, merged into one flat JSON file and printed as a table.

Figures (name: meaning, goal):
- data_clips_per_s: clips per second from the data module's train loader on the default synthetic store with
  CMMD's context margins (goal >= 1000, so that loading never bounds a GPU step).
- prepare_clips_per_s: clips per second through the preparation path (decode + resample + log-mel, pixels
  encoder) on freshly generated synthetic mp4s, every free core.
- unet_ms_per_fe_<coupling>: milliseconds per function evaluation of the dual U-Net (configs/model/<bench.unet_model>)
  with each coupling at equal widths, on a CMMD-shaped input (18 frames of 4x16x16 latents, an 80x112 mel),
  batch 1, CPU, median of `unet_repeats`; easy_fusion_overhead = easy_fusion / none - 1 (goal <= 0.15) and
  rs_mma_overhead = rs_mma / none - 1.
- mmdisco_step_over_base_finetune_step and guided_sampling_overhead: see the MMDisCo bench (`methods/mmdisco/bench.py`).
- lightning_overhead: a Trainer step over a bare PyTorch loop's step; see `avgen.bench.lightning`.
- before_after_*, conv_layout_*, adam_*: the default experiment's training step before and after the
  GPU-efficiency changes (video-convolution layout, fused optimizer update), each change alone, in turns;
  see `avgen.bench.before_after` (also writes profile_default_{before,after}.txt next to the results).
- vocoder_*: seconds to decode `vocoder_mels` synthetic mels by librosa's per-clip Griffin-Lim, batched
  Griffin-Lim and band synthesis, measured in turns; vocoder_batched_speedup (goal >= 5 on the CPU).
- shared_<policy>_<competitor>_*: the default experiment's step alone and beside one busy process, per thread
  policy (fixed at every core, the same with passive OpenMP waits, following the idle cores: the default);
  slowdown = beside / alone (goal for the default: <= 2.5); see `avgen.bench.shared_machine`.
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import get_object

from avgen.config import load_config
from avgen.utils.io import write_json
from avgen.utils.threads import free_cores, set_torch_threads


def run(overrides: list[str]) -> int:
    cfg = load_config("bench", overrides)
    threads = set_torch_threads(cfg.threads or None)
    out = Path(cfg.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.update({"bench_cpu_cores": free_cores(), "bench_torch_threads": threads})
    unknown = set(cfg.only or ()) - set(cfg.benches)
    if unknown:
        raise ValueError(
            f"bench only={sorted(unknown)}: not in configs/bench.yaml `benches` ({', '.join(cfg.benches)})"
        )
    for name, target in cfg.benches.items():
        if cfg.only and name not in cfg.only:
            continue
        results.update(get_object(target)(cfg))
        write_json(out, results)  # after each bench: a later failure keeps the earlier figures
    width = max(len(k) for k in results)
    print(f"{'figure':<{width}}  value")
    for key in sorted(results):
        value = results[key]
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(f"written to {out}")
    return 0
