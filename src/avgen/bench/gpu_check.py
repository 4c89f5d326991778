"""`avgen gpu-check` (`make gpu-check`): one command that checks a GPU machine and measures it, offline.

Sections, each written to `outputs/gpu_check/results.json` as soon as it ends (a later failure keeps the
earlier figures), in order of importance; a section not started within `budget_seconds` is skipped and says so:
1. `unet`: the paper-size dual U-Net's training step (fwd + bwd + Adam, bf16 autocast) at each batch size:
   ms, samples/s and MFU (FLOPs counted by torch's FlopCounterMode over the configured peak), with the video
   convolutions as plain Conv3d (the reference) and as per-frame 2-D convolutions (the default), eager and
   torch.compile'd; plus torch.profiler operator tables of both at `profile_batch_size` (profile_*.txt).
2. `default_experiment`: `cmmd_synthetic` alone on the GPU (steps/s from its own training clock), then its
   evaluation of `eval_samples` joint pairs (sampling, decoding, scoring; no conditional tasks), pairs/s.
3. `default_steps`: the default experiment's step without the Trainer, eager, compiled and with CUDA graphs.
4. `smoke`: a few steps of every method of the suite registry under DDP + bf16 (as `make gpu-smoke`).
5. `gpu_tests`: the project's tests that need a GPU (skipped on CPU machines).
6. `smoke_compiled`: every generative method again with `compile=true` (MMDisCo: its double backward compiled).
Prints a table at the end. `allow_cpu=true` rehearses it on a CPU (tiny sizes; the figures mean nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from avgen.bench.steps import default_experiment_step, sync, training_step_fn, unet_step, warm_up
from avgen.config import load_config
from avgen.suite import representatives
from avgen.utils.io import write_json, write_text


def unet_profile(cfg: DictConfig, device: str, out: Path) -> dict[str, str]:
    """Operator tables (top 25 by device time) of 3 training steps, Conv3d reference vs per-frame convs."""
    from torch.profiler import ProfilerActivity, profile

    files = {}
    for factorised in (False, True):
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        batch = cfg.unet.profile_batch_size if device == "cuda" else 2
        step, _ = training_step_fn(cfg, device, batch, factorised, compiled=False)
        step()  # warm-up outside the profile (allocations, cuDNN autotuning)
        sync(device)
        with profile(activities=activities) as prof:
            for _ in range(3):
                step()
            sync(device)
        key = "cuda_time_total" if device == "cuda" else "cpu_time_total"
        name = f"profile_{'frame_convs' if factorised else 'conv3d'}_b{batch}.txt"
        write_text(out / name, prof.key_averages().table(sort_by=key, row_limit=25))
        files[f"profile_{'frame_convs' if factorised else 'conv3d'}"] = name
    return files


def isolated_unet_step(
    overrides: list[str], device: str, batch: int, factorised: bool, compiled: bool, repeats: int
) -> dict[str, float]:
    """`unet_step` in a child process: a native crash (seen in torch.compile on the CPU) costs this figure
    only, not the sections after it."""
    code = (
        "import json, sys; from avgen.bench.steps import unet_step; from avgen.config import load_config; "
        f"cfg = load_config('gpu_check', {overrides!r}); "
        f"print(json.dumps(unet_step(cfg, {device!r}, {batch}, {factorised}, {compiled}, {repeats})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        from avgen.utils.numba_cache import describe_failure

        raise RuntimeError(f"child {describe_failure(proc)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_command(args: list[str], log: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(
            [sys.executable, "-m", "avgen.cli.main", *args], stdout=f, stderr=subprocess.STDOUT
        ).returncode
    return rc, time.perf_counter() - start


def default_experiment(cfg: DictConfig, device: str, out: Path) -> dict[str, Any]:
    d = cfg.default_experiment
    steps = d.steps if device == "cuda" else 6
    samples = d.eval_samples if device == "cuda" else 4
    run_dir = out / "runs" / d.experiment
    common = [f"experiment={d.experiment}", f"output_dir={run_dir}", *(["trainer=gpu"] if device == "cuda" else [])]
    rc, seconds = run_command(
        [
            "train",
            *common,
            "overwrite=true",
            f"trainer.max_steps={steps}",
            "evaluate.num_samples=0",
            "callbacks.media.num=0",
            f"trainer.val_check_interval={steps}",
            "trainer.limit_val_batches=1",
        ],
        out / f"train_{d.experiment}.log",
    )
    result: dict[str, Any] = {"train_rc": rc, "train_wall_s": seconds}
    if rc == 0:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        result.update(
            {
                "steps": metrics["steps"],
                "train_seconds": metrics["train_seconds"],
                "steps_per_s": metrics["steps"] / metrics["train_seconds"],
            }
        )
        # the goal's figure: `samples` joint pairs, sampled, decoded and scored (no v2a / a2v tasks)
        rc, seconds = run_command(
            [
                "eval",
                *common,
                f"evaluate.num_samples={samples}",
                "evaluate.num_videos=0",
                "evaluate.num_video_to_audio=0",
                "evaluate.num_audio_to_video=0",
            ],
            out / f"eval_{d.experiment}.log",
        )
        result.update({"eval_rc": rc, "eval_wall_s": seconds})
        if rc == 0:
            ev = json.loads((run_dir / "eval" / "metrics.json").read_text())
            result.update(
                {
                    "eval_samples": ev["num_samples"],
                    "eval_seconds": ev["eval_seconds"],
                    "eval_pairs_per_s": ev["num_samples"] / ev["eval_seconds"],
                    "sampling_seconds": ev["sampling_seconds"],
                }
            )
    return result


def default_steps(cfg: DictConfig, device: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The default experiment's training step without Lightning (its model, batch, optimizer, clipping; bf16
    autocast on CUDA), eager, torch.compile'd and with CUDA graphs: steps/s after a warm-up that compiles.
    Beside `default_experiment`'s Trainer figure, it says how much of a step is the network and what
    compilation would give."""
    import tempfile

    d = cfg.default_experiment
    variants = {"eager": None, "compiled": {}, "cudagraphs": {"mode": "reduce-overhead"}}
    if device != "cuda":  # a rehearsal checks the plumbing: no code generation, no CUDA graphs
        variants = {"eager": None, "compiled": {"backend": "aot_eager"}}
    steps = d.bare_steps if device == "cuda" else 3
    result: dict[str, Any] = {}
    for label, options in variants.items():
        try:
            with tempfile.TemporaryDirectory() as tmp:
                step = default_experiment_step(d.experiment, [f"output_dir={tmp}", *overrides], device, options)
                warmup = warm_up(step, device, 5)
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                sync(device)
                result[label] = {"steps_per_s": steps / (time.perf_counter() - start), "warmup_s": warmup}
        except Exception as e:  # noqa: BLE001 - a variant that fails is a result; the others still run
            result[label] = {"error": f"{type(e).__name__}: {e}"}
    return result


def smoke(cfg: DictConfig, device: str, out: Path, experiments, compiled: bool = False) -> dict[str, Any]:
    """A few training steps of each experiment at the suite registry's smoke sizes, all under one outputs
    folder (so a run finds what it starts from: MMDisCo the bases trained before it); with `compile=true`
    when `compiled` (those runs named <experiment>_compiled)."""
    from avgen.suite import smoke_overrides

    result = {}
    for experiment in experiments:
        name = f"{experiment}_compiled" if compiled else experiment
        args = [
            "train",
            f"experiment={experiment}",
            *smoke_overrides(experiment),
            f"name={name}",
            f"paths.output_dir={out / 'smoke'}",
            "overwrite=true",
            f"trainer.max_steps={cfg.smoke_steps}",
            f"trainer.val_check_interval={cfg.smoke_steps}",
            *(["trainer=gpu"] if device == "cuda" else []),
        ]
        if compiled:  # a CPU rehearsal checks the capture only (inductor's CPU code generation is slow)
            args += ["compile=true", *([] if device == "cuda" else ["compile_backend=aot_eager"])]
        log = out / f"smoke_{name}.log"
        rc, seconds = run_command(args, log)
        # DDP wrapped on a side stream made torch warn on every backward (utils/ddp.py): count what is left
        text = log.read_text(errors="replace") if log.is_file() else ""
        result[name] = {"rc": rc, "wall_s": seconds, "stream_warnings": text.count("AccumulateGrad node's stream")}
    return result


GPU_TESTS = ("tests/test_griffin_lim.py", "tests/test_video_convs.py")


def gpu_tests(out: Path) -> dict[str, Any]:
    """The project's GPU tests (e.g. batched Griffin-Lim on CUDA equals the CPU), where a source checkout has them."""
    from avgen.config import repo_root

    paths = [str(repo_root() / p) for p in GPU_TESTS if (repo_root() / p).is_file()]
    if not paths:
        return {"rc": 0, "note": "no tests/ in this install"}
    with open(out / "gpu_tests.log", "w") as f:
        rc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *paths],
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=repo_root(),
        ).returncode
    return {"rc": rc, "log": "gpu_tests.log"}


def run(overrides: list[str]) -> int:
    cfg = load_config("gpu_check", overrides)
    overrides = list(overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not cfg.allow_cpu:
        print(
            "gpu-check: no GPU visible (torch.cuda.is_available() is False); allow_cpu=true rehearses it on the CPU",
            file=sys.stderr,
        )
        return 2
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (rehearsal)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "skipped": [],
    }

    def section(name: str, fn) -> None:
        if time.perf_counter() - start > cfg.budget_seconds:
            results["skipped"].append(name)
            return
        t = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001 - a failed section is a result; the others still run
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        results.setdefault("section_seconds", {})[name] = time.perf_counter() - t
        write_json(out / "results.json", results)

    batches = list(cfg.unet.batch_sizes) if device == "cuda" else [2]
    compiled = set(cfg.unet.compile_batch_sizes) if device == "cuda" else {2}
    repeats = cfg.unet.repeats if device == "cuda" else 2
    for b in batches:
        for label, factorised in (("conv3d", False), ("frame_convs", True)):
            section(f"unet_b{b}_{label}", lambda b=b, f=factorised: unet_step(cfg, device, b, f, False, repeats))
    section("unet_profile", lambda: unet_profile(cfg, device, out))
    section("default_experiment", lambda: default_experiment(cfg, device, out))
    for b in batches:
        if b in compiled:
            section(
                f"unet_b{b}_frame_convs_compiled",
                lambda b=b: isolated_unet_step(overrides, device, b, True, True, repeats),
            )
    for b in cfg.unet.cudagraph_batch_sizes if device == "cuda" else []:  # small batches: launch-bound
        section(
            f"unet_b{b}_frame_convs_cudagraphs",
            lambda b=b: isolated_unet_step(
                [*overrides, "unet.compile_mode=reduce-overhead"], device, b, True, True, repeats
            ),
        )
    section("default_steps", lambda: default_steps(cfg, device))
    section("smoke", lambda: smoke(cfg, device, out, representatives(cfg.smoke_suite)))
    if device == "cuda":  # the tests that need a GPU (skipped on CPU machines)
        section("gpu_tests", lambda: gpu_tests(out))
    section(
        "smoke_compiled",
        lambda: smoke(cfg, device, out, representatives(cfg.smoke_suite, methods_only=True), compiled=True),
    )
    results["total_seconds"] = time.perf_counter() - start
    write_json(out / "results.json", results)
    print(format_results(results))
    print(f"written to {out / 'results.json'}")
    failed = [
        k
        for k, v in results.items()
        if isinstance(v, dict)
        and (
            "error" in v
            or v.get("train_rc")
            or v.get("rc")
            or any(isinstance(r, dict) and (r.get("rc") or "error" in r) for r in v.values())
        )
    ]
    return 1 if failed else 0


def format_results(results: dict[str, Any]) -> str:
    lines = [f"device: {results['device']} (torch {results['torch']}, CUDA {results['cuda']})"]
    for key, value in results.items():
        if key.startswith("unet_b") and "error" not in value:
            lines.append(
                f"{key:<34} {value['step_ms']:8.1f} ms  {value['samples_per_s']:8.1f} samples/s  "
                f"MFU {100 * value['mfu']:5.1f}%"
            )
        elif isinstance(value, dict) and "error" in value:
            lines.append(f"{key:<34} FAILED {value['error'][:200]}")
    d = results.get("default_experiment", {})
    if "steps_per_s" in d:
        lines.append(f"{'default experiment':<34} {d['steps_per_s']:8.2f} steps/s")
    for label, r in results.get("default_steps", {}).items():
        value = (
            f"{r['steps_per_s']:8.2f} steps/s (warm-up {r['warmup_s']:.0f} s)"
            if "steps_per_s" in r
            else f"FAILED {r.get('error', '')[:150]}"
        )
        lines.append(f"{'default step, no Trainer, ' + label:<34} {value}")
    if "eval_pairs_per_s" in d:
        lines.append(
            f"{'evaluation':<34} {d['eval_samples']} pairs in {d['eval_seconds']:.1f} s "
            f"({d['eval_pairs_per_s']:.1f} pairs/s, decoding included)"
        )
    for name, r in {**results.get("smoke", {}), **results.get("smoke_compiled", {})}.items():
        if isinstance(r, dict):
            lines.append(
                f"{'smoke ' + name:<34} {'ok' if r['rc'] == 0 else 'FAILED rc=' + str(r['rc'])} "
                f"({r['wall_s']:.0f} s, AccumulateGrad stream warnings: {r.get('stream_warnings', '?')})"
            )
    if results.get("skipped"):
        lines.append(f"skipped (budget): {', '.join(results['skipped'])}")
    return "\n".join(lines)
