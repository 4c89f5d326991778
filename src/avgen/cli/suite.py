"""`avgen suite [dataset=synthetic] [seeds=N] [only=<glob>,...] [report=false]` (`make suite`): every run of a
dataset's suite registry (configs/suite/<dataset>.yaml) that is not trained yet (with `only`: those whose run
names match one of the globs), each scored on the registry's shared evaluation, then the comparison report
(`report=false` skips it: it re-reads every run of the dataset, minutes on a CPU, when several batches of runs
train one after another; `make compare` builds it later). Trained runs are kept: running it again continues."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from avgen.cli.args import pop, pop_flag
from avgen.config import load_config
from avgen.suite import load_suite, runs, train


def run(overrides: list[str]) -> int:
    dataset, overrides = pop(overrides, "dataset")
    seeds, overrides = pop(overrides, "seeds")
    only, overrides = pop(overrides, "only")
    report, overrides = pop_flag(overrides, "report", default=True)
    patterns = [p for p in (only or "").split(",") if p]
    dataset = dataset or "synthetic"
    suite = load_suite(dataset)
    outputs = Path(
        load_config("train", [o for o in overrides if o.startswith("paths.")] + ["name=suite"]).paths.output_dir
    )
    todo = [
        r
        for r in runs(dataset, int(seeds) if seeds else None)
        if not (outputs / r.name / "metrics.json").is_file()
        and (not patterns or any(fnmatch(r.name, p) for p in patterns))
    ]
    print(f"suite {dataset}: {len(todo)} run(s) to train: {', '.join(r.name for r in todo) or 'none'}")
    for r in todo:
        rc = train(r.train_args(tuple(suite.evaluate)) + list(overrides))
        if rc != 0:
            print(f"suite {dataset}: {r.name} failed (exit {rc}); the runs before it are kept")
            return rc
    if not report:
        print(f"suite {dataset}: report skipped (report=false); build it with `make compare DATASET={dataset}`")
        return 0
    return train(["compare", f"dataset_name={dataset}", *[o for o in overrides if o.startswith("paths.")]])
