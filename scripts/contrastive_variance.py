"""How noisy CMMD's contrastive signal is under each negative-noise mode (Algorithm 1, shared_both, independent).

On one fixed batch of test clips of a trained run and its negatives (the run's own negative sampler), the
per-example difference L_pos - (L_neg_audio + L_neg_video) / 2 is computed for `draws` noise draws at fixed
timesteps; its variance over draws (mean over examples) is printed per mode, with the mean difference (the
signal) and their ratio. Usage:

    python scripts/contrastive_variance.py experiment=cmmd_synthetic [draws=32] [batch=16] [key=value ...]
"""

from __future__ import annotations

import json
import sys

import torch

from avgen.cli.args import pop, split_experiment
from avgen.experiment import load_trained
from avgen.methods.cmmd.losses import joint_diffusion_loss
from avgen.methods.cmmd.module import NOISE_MODES, negative_pair_noise


def main(argv: list[str]) -> dict:
    experiment, overrides = split_experiment(argv)
    draws, overrides = pop(overrides, "draws")
    size, overrides = pop(overrides, "batch")
    draws, size = int(draws or 32), int(size or 16)
    cfg, dm, module, _, _ = load_trained(experiment, [*overrides, f"data.batch_size={size}", "threads=1"])
    torch.set_num_threads(1)
    module.eval()
    batch = next(iter(dm.val_dataloader()))
    from avgen.data.clips import clips

    x0 = clips(batch)
    g = torch.Generator().manual_seed(0)
    neg_audio, _ = module.negatives(batch, "audio", generator=g)
    neg_video, _ = module.negatives(batch, "video", generator=g)
    b = x0["audio"].shape[0]
    sub = torch.arange(b)
    pairs = {
        "audio": torch.cat([x0["audio"], neg_audio, x0["audio"]]),
        "video": torch.cat([x0["video"], x0["video"], neg_video]),
    }
    t = torch.linspace(50, 950, b).long()  # fixed timesteps across the schedule, one per example
    out = {}
    with torch.no_grad():
        for mode in NOISE_MODES:
            torch.manual_seed(1)
            diffs = []
            for _ in range(draws):
                loss = joint_diffusion_loss(
                    module.net, module.schedule, pairs, t.repeat(3), negative_pair_noise(x0, sub, mode)
                )
                pos, na, nv = loss.split([b, b, b])
                diffs.append(pos - (na + nv) / 2)
            d = torch.stack(diffs)  # (draws, B)
            out[mode] = {
                "variance_over_draws": d.var(dim=0).mean().item(),
                "mean_difference": d.mean().item(),
                "signal_to_noise": (d.mean(0).abs() / d.std(0).clamp_min(1e-12)).mean().item(),
            }
    for mode in ("algorithm1", "shared_both"):
        out[f"variance_ratio_independent_over_{mode}"] = (
            out["independent"]["variance_over_draws"] / out[mode]["variance_over_draws"]
        )
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
