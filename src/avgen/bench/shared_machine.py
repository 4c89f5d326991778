"""`shared_*` for `avgen bench`: the default experiment's training step alone and beside one busy competing
process (a single-threaded Python loop, what a second user's script or a data job looks like), under each
thread policy:

- `all_cores`: torch threads = every free core, fixed at the start (the old default);
- `all_cores_passive`: the same with OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning);
- `follow`: the default (`threads: 0`): threads = the cores other processes left idle while the run started,
  followed every `shared_every_seconds` as training runs (utils/threads.ThreadGovernor, callbacks/threads.py).

Competitor: `none`, `from_start` (running before the step is built) or `arrives` (started once the step is
warm, so a policy chosen at the start is no help). Each condition runs in its own child process for
`shared_seconds` of timed steps, the conditions in turns (all of them once, then again) so drift on the
machine hits every condition alike; a figure is the median over turns of the mean step time, and
`shared_<policy>_<competitor>_slowdown` its ratio to the same policy alone in the same turn.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from omegaconf import DictConfig

POLICIES = ("all_cores", "all_cores_passive", "follow")
COMPETITORS = ("none", "from_start", "arrives")
BUSY = "while True: pass"


def _competitor() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BUSY])


def run_condition(cfg: DictConfig, policy: str, competitor: str) -> float:
    """Mean seconds per step of one child process under `policy`, beside `competitor`."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY"):
        env.pop(var, None)  # the child chooses (an inherited cap would decide the policy for it)
    if policy == "all_cores_passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    busy = _competitor() if competitor == "from_start" else None
    try:
        if busy is not None:
            time.sleep(1.0)  # running, as a job already there would be
        args = [policy, cfg.overhead_experiment, str(cfg.data.store), str(cfg.shared_seconds)]
        args.append(str(cfg.shared_every_seconds))
        child = subprocess.Popen(
            [sys.executable, "-m", "avgen.bench.shared_machine", *args], env=env, stdout=subprocess.PIPE, text=True
        )
        result = None
        for line in child.stdout:
            if line.startswith("warm") and competitor == "arrives":
                busy = _competitor()
            elif line.startswith("{"):
                result = json.loads(line)
        if child.wait() != 0 or result is None:
            raise RuntimeError(f"bench shared_machine: the {policy}/{competitor} child failed")
        return result["seconds_per_step"]
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def bench_shared_machine(cfg: DictConfig) -> dict[str, float]:
    times: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    for _turn in range(cfg.shared_turns):
        alone = {}
        for policy in POLICIES:
            for competitor in COMPETITORS:
                seconds = run_condition(cfg, policy, competitor)
                times.setdefault((policy, competitor), []).append(seconds)
                if competitor == "none":
                    alone[policy] = seconds
                else:
                    ratios.setdefault((policy, competitor), []).append(seconds / alone[policy])
    out = {f"shared_{p}_{c}_step_ms": 1000 * statistics.median(v) for (p, c), v in times.items()}
    out.update({f"shared_{p}_{c}_slowdown": statistics.median(v) for (p, c), v in ratios.items()})
    out["shared_turns"] = cfg.shared_turns
    return out


def child(policy: str, experiment: str, store: str, seconds: float, every_seconds: float) -> None:
    """One condition: build the step, warm it, time it for `seconds`; prints "warm" then a JSON line."""
    from avgen.bench.steps import default_experiment_step
    from avgen.utils.threads import ThreadGovernor, free_cores, idle_cores, set_torch_threads

    start = time.monotonic()
    governor = None
    if policy == "follow":
        set_torch_threads(idle_cores())
        governor = ThreadGovernor(limit=free_cores())
    else:
        set_torch_threads(free_cores())
    step = default_experiment_step(experiment, [f"data.store={store}", "threads=0"])
    for _ in range(3):
        step()
    print("warm", flush=True)
    steps, begin, last_check = 0, time.monotonic(), time.monotonic()
    while time.monotonic() - begin < seconds:
        step()
        steps += 1
        if governor is not None and time.monotonic() - last_check >= every_seconds:
            governor.check()
            last_check = time.monotonic()
    elapsed = time.monotonic() - begin
    print(json.dumps({"seconds_per_step": elapsed / steps, "steps": steps, "setup_s": begin - start}), flush=True)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
