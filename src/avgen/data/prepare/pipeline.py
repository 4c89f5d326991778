"""Preparation: raw media -> clip store (see `avgen.data.store` for the layout).

Stages: list sources (adapter) -> per source, in parallel workers: open, window, compute each
representation -> in the main process: finalize (batched encoders), write the source's part file
atomically -> consolidate all parts into memory-mappable arrays, the manifest and the metadata.

Nothing crashes the job on bad input: a source that fails is skipped with a one-line reason in
`report.json`. A killed job re-run skips sources whose part file exists.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avgen.data.media import MediaError, MediaFile
from avgen.data.prepare.base import Adapter, Source
from avgen.data.representations import Representation
from avgen.data.store import MANIFEST, METADATA, REPORT, write_store
from avgen.utils.io import atomic_path, check_writable, write_json, write_npz
from avgen.utils.progress import progress as report_progress
from avgen.utils.threads import free_cores, one_thread_worker

PARTS = "parts"
SHARD_REPORT = "report.shard-{}-of-{}.json"


@dataclass
class Windowing:
    """How sources are cut into clips."""

    clip_seconds: float  # length of a clip
    margin_seconds: float = 0.0  # context stored on each side of a clip
    stride_seconds: float | None = None  # distance between clip starts; None = clip_seconds
    max_clips_per_source: int | None = None
    edge_seconds: float = 0.0  # least distance of a stored window from a file's ends (at least the context)

    def __post_init__(self) -> None:
        if self.clip_seconds <= 0 or self.margin_seconds < 0 or self.edge_seconds < 0:
            raise ValueError(f"need clip_seconds > 0, margin_seconds >= 0 and edge_seconds >= 0, got {self}")
        if self.stride_seconds is not None and self.stride_seconds <= 0:
            raise ValueError(f"stride_seconds must be > 0, got {self.stride_seconds}")

    def edge(self, context: float = 0.0) -> float:
        """Distance kept between a stored window and a file's ends: `edge_seconds`, and at least `context`, the
        source the representations read beyond a window (a mel's half STFT window). A window nearer an end
        would see what no other window sees (padding, the silence before the first sample): a time-shifted
        negative cut there could be told from its audio alone."""
        return max(self.edge_seconds, context)

    def starts(
        self, duration: float, lo: float | None = None, hi: float | None = None, context: float = 0.0
    ) -> list[float]:
        """Clip start times (excluding margins) that fit with their margins inside [lo, hi] of a file (the
        whole file by default), and `edge(context)` away from the file's ends. A range that held a window but
        loses it to the edge slides inward instead, where the file has room (e.g. a window an adapter centred
        on a sound near the end of the file)."""
        edge = self.edge(context)
        lo = 0.0 if lo is None else max(lo, 0.0)
        hi = duration if hi is None else min(hi, duration)
        need = self.clip_seconds + 2 * self.margin_seconds
        inner_lo, inner_hi = max(lo, edge), min(hi, duration - edge)
        if inner_hi - inner_lo < need - 1e-6 <= hi - lo and duration - 2 * edge >= need - 1e-6:
            inner_lo = min(max(lo, edge), duration - edge - need)
            inner_hi = inner_lo + need
        lo, hi = inner_lo, inner_hi
        stride = self.stride_seconds or self.clip_seconds
        first = lo + self.margin_seconds
        span = hi - self.margin_seconds - self.clip_seconds - first
        if span < -1e-6:
            return []
        count = int(math.floor(span / stride + 1e-6)) + 1
        if self.max_clips_per_source is not None:
            count = min(count, self.max_clips_per_source)
        return [first + k * stride for k in range(count)]


@dataclass
class SourceResult:
    source: Source
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    starts: list[float] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def process_source(source: Source, reps: dict[str, Representation], windowing: Windowing) -> SourceResult:
    """Decode one source and compute every representation for each of its windows (runs in a worker)."""
    t = time.perf_counter()
    try:
        media = MediaFile(source.path)
        context = max(rep.context_seconds for rep in reps.values())
        starts = windowing.starts(media.info.duration, source.start, source.end, context)
        if not starts:
            need = windowing.clip_seconds + 2 * windowing.margin_seconds + 2 * windowing.edge(context)
            raise MediaError(
                f"too short: {media.info.duration:.2f} s usable, a clip with margins and edges needs {need:.2f} s"
            )
        span = windowing.clip_seconds + 2 * windowing.margin_seconds
        arrays = {
            name: np.stack([rep.compute(media, s - windowing.margin_seconds, span) for s in starts])
            for name, rep in reps.items()
        }
    except MediaError as e:
        return SourceResult(source, error=str(e), seconds=time.perf_counter() - t)
    except Exception as e:  # an unexpected decoder failure must not stop the job either
        return SourceResult(
            source, error=f"{type(e).__name__}: {' '.join(str(e).split())[:160]}", seconds=time.perf_counter() - t
        )
    return SourceResult(source, arrays, starts, seconds=time.perf_counter() - t)


def _run(fn: Callable, items: list, workers: int) -> Iterator:
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    with ProcessPoolExecutor(workers, initializer=one_thread_worker) as pool:
        yield from pool.map(fn, items, chunksize=4)


class _Job:
    """Picklable callable carrying the representations and windowing to the workers."""

    def __init__(self, reps: dict[str, Representation], windowing: Windowing):
        self.reps, self.windowing = reps, windowing

    def __call__(self, source: Source) -> SourceResult:
        return process_source(source, self.reps, self.windowing)


def parse_shard(shard: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"shard {shard}: need 0 <= i < n")
    return index, count


def prepare(
    adapter: Adapter,
    raw: str | os.PathLike,
    out: str | os.PathLike,
    reps: dict[str, Representation],
    windowing: Windowing,
    workers: int = 0,
    progress: bool = True,
    batch_sources: int = 64,
    shard: str | None = None,
    merge: Sequence[str | os.PathLike] = (),
) -> dict[str, Any]:
    """Prepare a store at `out` from `raw`; returns the report (also written to `out/report.json`).

    `shard="i/n"` prepares only every n-th source from the i-th (an independent job, e.g. one per GPU or
    node) into `out`'s part files, without consolidating. `merge=[shard outs]` then gathers the shards' part
    files into `out` and consolidates them; the store equals the one a single run gives.
    """
    if not reps:
        raise ValueError("no representations configured")
    if shard is not None and merge:
        raise ValueError("shard and merge exclude each other: run the shards, then one merge")
    out = Path(out)
    check_writable(out)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    listing = adapter.list_sources(Path(raw))
    timings["list"] = time.perf_counter() - t
    keys = [s.key for s in listing.sources]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{adapter.name}: source ids are not unique after sanitising")
    config = _check_same_config(out, reps, windowing, adapter.name)
    parts_dir = out / PARTS
    parts_dir.mkdir(parents=True, exist_ok=True)
    skipped: list[dict[str, str]] = [{"path": p, "reason": r} for p, r in listing.skipped]
    if merge:
        skipped += _merge_parts([Path(m) for m in merge], out, config, listing.sources)
    todo = [s for s in listing.sources if not (parts_dir / f"{s.key}.npz").is_file()]
    done_before = len(listing.sources) - len(todo)
    if shard is not None:
        index, count = parse_shard(shard)
        mine = {s.key for k, s in enumerate(listing.sources) if k % count == index}
        todo = [s for s in todo if s.key in mine]
    elif merge:
        failed = {entry["source"] for entry in skipped if "source" in entry}
        uncovered = [s.source_id for s in todo if s.key not in failed]
        if uncovered:
            raise RuntimeError(
                f"merge: {len(uncovered)} sources were prepared by none of the shards "
                f"(first: {uncovered[:3]}); run the missing shards, then merge again"
            )
        todo = []
    workers = workers if workers > 0 else free_cores()

    t = time.perf_counter()
    decode_seconds = 0.0
    prepared_now = 0
    pending: list[SourceResult] = []
    results = _run(_Job(reps, windowing), todo, workers)
    for result in report_progress(results, f"prepare {adapter.name} (files)", len(todo)) if progress else results:
        decode_seconds += result.seconds
        if result.error is not None:
            skipped.append({"path": result.source.path, "source": result.source.key, "reason": result.error})
            continue
        pending.append(result)
        prepared_now += 1
        if len(pending) >= batch_sources:
            _write_parts(pending, reps, parts_dir)
            pending = []
    _write_parts(pending, reps, parts_dir)
    timings["decode_and_encode"] = time.perf_counter() - t
    timings["decode_cpu_seconds"] = decode_seconds

    if shard is not None:
        report = {
            "dataset": adapter.name,
            "raw": str(Path(raw).resolve()),
            "shard": shard,
            "sources": len(mine),
            "sources_prepared_now": prepared_now,
            "skipped": skipped,
            "num_skipped": len(skipped),
            "missing": listing.missing,
            "num_missing": len(listing.missing),
            "seconds": timings,
        }
        write_json(out / SHARD_REPORT.format(*parse_shard(shard)), report)
        return report

    t = time.perf_counter()
    meta_path = out / METADATA
    if not any((parts_dir / f"{s.key}.npz").is_file() for s in listing.sources):
        num_clips = 0
    elif prepared_now == 0 and meta_path.is_file() and _same_sources(out, listing.sources):
        num_clips = json.loads(meta_path.read_text())["num_clips"]  # up to date: nothing to rewrite
    else:
        num_clips = _consolidate(out, listing.sources, reps, windowing, listing.label_names, adapter.name)
    timings["consolidate"] = time.perf_counter() - t
    report = {
        "dataset": adapter.name,
        "raw": str(Path(raw).resolve()),
        "sources": len(listing.sources),
        "sources_prepared_now": prepared_now,
        "sources_done_before": done_before,
        "clips_written": num_clips,
        "skipped": skipped,
        "num_skipped": len(skipped),
        "missing": listing.missing,
        "num_missing": len(listing.missing),
        "seconds": timings,
    }
    write_json(out / REPORT, report)
    if num_clips == 0:
        raise RuntimeError(f"no clip was prepared into {out}; the reasons are in {out / REPORT}")
    return report


def _check_same_config(out: Path, reps: dict[str, Representation], windowing: Windowing, dataset: str) -> dict:
    """Refuse to mix parts made with another preset into one store; record the config on first use."""
    config = {
        "dataset": dataset,
        "windowing": asdict(windowing),
        "representations": {name: rep.describe() for name, rep in reps.items()},
    }
    config = json.loads(json.dumps(config))  # normalise tuples/floats as stored
    path = out / "prepare_config.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != config:
            raise ValueError(
                f"OUT={out} holds a store prepared with another configuration ({path}); choose another OUT or delete it"
            )
    else:
        write_json(path, config)
    return config


def _merge_parts(shards: list[Path], out: Path, config: dict, sources: list[Source]) -> list[dict[str, str]]:
    """Copy the shards' part files into `out` (same preparation config required); returns their skipped lists."""
    keys = {s.key for s in sources}
    skipped: list[dict[str, str]] = []
    for shard in shards:
        config_path = shard / "prepare_config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"merge: {shard} holds no prepare_config.json: not a shard of `avgen prepare`")
        if json.loads(config_path.read_text()) != config:
            raise ValueError(f"merge: {shard} was prepared with another configuration than this run")
        if shard.resolve() != out.resolve():
            for part in sorted((shard / PARTS).glob("*.npz")):
                target = out / PARTS / part.name
                if part.stem in keys and not target.is_file():
                    with atomic_path(target, suffix=".npz") as tmp:
                        shutil.copyfile(part, tmp)
        for report in sorted(shard.glob(SHARD_REPORT.replace("{}", "*"))):
            skipped += [e for e in json.loads(report.read_text())["skipped"] if "source" in e]
    return skipped


def _same_sources(out: Path, sources: list[Source]) -> bool:
    """Whether the complete store at `out` was consolidated from exactly these sources."""
    with open(out / MANIFEST) as f:
        stored = {json.loads(line)["source"] for line in f if line.strip()}
    present = {s.path for s in sources if (out / PARTS / f"{s.key}.npz").is_file()}
    return stored == present


def _write_parts(results: list[SourceResult], reps: dict[str, Representation], parts_dir: Path) -> None:
    """Finalize representations batched over several sources, then write one part file per source."""
    if not results:
        return
    counts = [len(r.starts) for r in results]
    finals = {name: rep.finalize(np.concatenate([r.arrays[name] for r in results])) for name, rep in reps.items()}
    offset = 0
    for result, n in zip(results, counts):
        arrays = {name: arr[offset : offset + n] for name, arr in finals.items()}
        offset += n
        rows = json.dumps({"source": asdict(result.source), "starts": result.starts})
        write_npz(parts_dir / f"{result.source.key}.npz", _rows=np.array(rows), **arrays)


def _consolidate(
    out: Path,
    sources: list[Source],
    reps: dict[str, Representation],
    windowing: Windowing,
    label_names: list[str],
    dataset: str,
) -> int:
    """Gather part files (in source order) into `<rep>.npy`, the manifest and, last, the metadata."""
    parts = [(s, out / PARTS / f"{s.key}.npz") for s in sources]
    parts = [(s, p) for s, p in parts if p.is_file()]
    shapes: dict[str, tuple] = {}
    rows: list[dict[str, Any]] = []
    for source, path in parts:
        with np.load(path) as part:
            info = json.loads(str(part["_rows"]))
            for name in reps:
                shapes.setdefault(name, part[name].shape[1:])
                if part[name].shape[1:] != shapes[name]:
                    raise ValueError(f"{path}: {name} has shape {part[name].shape[1:]}, others {shapes[name]}")
        for k, start in enumerate(info["starts"]):
            clip_id = source.source_id if len(info["starts"]) == 1 else f"{source.source_id}_{k:04d}"
            rows.append(
                {
                    "index": len(rows),
                    "id": clip_id,
                    "source": source.path,
                    "start": round(start, 6),
                    "split": source.split,
                    "label": source.label,
                    "label_name": label_names[source.label] if source.label >= 0 else "",
                    "caption": source.caption,
                }
            )

    def blocks(name: str) -> Iterator[np.ndarray]:
        for _, path in parts:
            with np.load(path) as part:
                yield part[name]

    rep_meta = {}
    for name, rep in reps.items():
        meta = rep.describe()
        meta["clip_frames"] = rep.num_frames(windowing.clip_seconds)
        meta["margin_frames"] = rep.num_frames(windowing.margin_seconds)
        meta["shape"] = list(shapes[name])
        rep_meta[name] = meta
    write_store(
        out,
        rows,
        {name: (rep.dtype, shapes[name]) for name, rep in reps.items()},
        blocks,
        {
            "dataset": dataset,
            "label_names": label_names,
            "clip_seconds": windowing.clip_seconds,
            "margin_seconds": windowing.margin_seconds,
            "stride_seconds": windowing.stride_seconds,
            "representations": rep_meta,
            "time_zero": "clip start minus margin; video frame k at k*seconds_per_frame, mel frame k centred there",
        },
    )
    return len(rows)
