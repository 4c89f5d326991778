"""`avgen gpu-smoke` (`make gpu-smoke`): a short DDP + bf16 run of every method of the synthetic suite
registry (one run per method, after what it starts from) on the visible GPUs, in outputs/gpu_smoke/."""

from __future__ import annotations

from avgen.suite import representatives, smoke_overrides, train


def run(overrides: list[str]) -> int:
    experiments = representatives("synthetic")
    common = [
        "overwrite=true",
        "trainer=gpu",
        "trainer.max_steps=20",
        "trainer.val_check_interval=10",
        "trainer.log_every_n_steps=5",
        "paths.output_dir=outputs/gpu_smoke",
    ]
    for experiment in experiments:
        rc = train(["train", f"experiment={experiment}", *smoke_overrides(experiment), *common, *overrides])
        if rc != 0:
            return rc
    print(
        f"gpu-smoke: {', '.join(experiments)} trained under DDP + bf16; replicas agree "
        "(outputs/gpu_smoke/*/replicas.json)"
    )
    return 0
