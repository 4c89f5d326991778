"""The fake-pair cache (MMDisCo §3.2; docs/methods.md#mmdisco): pairs sampled in advance from the bases, stored
like real data.

Sampling is batched and resumable: batch k is drawn with its own seed (`seed`, k) and written atomically as
`parts/fake_<k>.npz`, so a killed job re-run draws only the missing batches and the result equals one
uninterrupted run. The consolidated cache is a store (same format as prepared data, split `fake`, the real
store's representation names and metadata), readable by `Store` and `AVDataModule`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avgen.data.store import Store, write_store
from avgen.diffusion.denoiser import Denoiser
from avgen.sampling.samplers import initial_noise, sample
from avgen.utils.flops import counter
from avgen.utils.io import write_npz
from avgen.utils.progress import progress as report_progress

SOURCE = "bases_sha256.txt"  # in parts/: the bases an unfinished cache is being sampled from
SETTINGS = "settings.json"  # in parts/: the settings it is sampled with


def bases_fingerprint(bases: torch.nn.Module) -> str:
    """SHA-256 of the bases' weights (names, shapes, values): which bases a cache was sampled from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(bases.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_source(cache: Path, recorded: str | None, source: str) -> None:
    """A cache (or an unfinished one's parts) recorded as sampled from other bases is refused, not reused."""
    if recorded is not None and recorded != source:
        raise ValueError(
            f"{cache}: this fake-pair cache was sampled from other bases (weights sha256 {recorded[:12]}..., "
            f"these are {source[:12]}...); delete it or point data.fake_store elsewhere"
        )


def cache_settings(
    num: int,
    batch_size: int = 32,
    sampler: str = "ddim",
    steps: int = 50,
    seed: int = 0,
    sampler_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What decides a cache's pairs besides the bases (batch k is drawn with seed (seed, k)), as JSON values."""
    settings = {"num": num, "batch_size": batch_size, "sampler": sampler, "steps": steps, "seed": seed}
    return json.loads(json.dumps({**settings, "sampler_kwargs": _plain(sampler_kwargs or {})}, sort_keys=True))


def _plain(x: Any) -> Any:
    """Mappings and sequences (config nodes included) as dicts and lists of JSON values."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, Sequence) and not isinstance(x, str):
        return [_plain(v) for v in x]
    return x


def check_settings(cache: Path, recorded: dict[str, Any] | None, settings: dict[str, Any]) -> None:
    """A cache (or an unfinished one's parts) sampled with other settings is refused, naming the difference."""
    if recorded is None or recorded == settings:
        return
    differ = sorted(k for k in {*recorded, *settings} if recorded.get(k) != settings.get(k))
    raise ValueError(
        f"{cache}: this fake-pair cache was sampled with other settings ("
        + "; ".join(f"{k}: {recorded.get(k)!r} there, {settings.get(k)!r} now" for k in differ)
        + "); delete it or point data.fake_store elsewhere"
    )


def build_fake_cache(
    bases: Denoiser,
    real: Store,
    reps: dict[str, str],
    out: str | Path,
    num: int,
    batch_size: int = 32,
    sampler: str = "ddim",
    steps: int = 50,
    seed: int = 0,
    sampler_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    progress: bool = True,
    prompted: Callable[[list[str]], Denoiser] | None = None,
    source: str | None = None,
) -> Store:
    """Sample `num` independent pairs from `bases` shaped like the real store's clips; returns the cache store.

    reps: {"video": real video representation name, "audio": real audio representation name}.
    prompted: text bases (out of domain): prompts -> the bases bound to them (with CFG). Each fake pair then
    gets a caption of the real train split (VGGSound labels, Landscape captions), drawn with the batch's
    seed, and keeps it as its caption (the discriminator sees it).
    """
    out = Path(out)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    if source is not None:  # parts of other bases never mix into this cache
        check_source(out, (parts / SOURCE).read_text().strip() if (parts / SOURCE).is_file() else None, source)
        (parts / SOURCE).write_text(source)
    settings = cache_settings(num, batch_size, sampler, steps, seed, sampler_kwargs)
    recorded = json.loads((parts / SETTINGS).read_text()) if (parts / SETTINGS).is_file() else None
    check_settings(out, recorded, settings)  # nor parts of other settings
    (parts / SETTINGS).write_text(json.dumps(settings, sort_keys=True))
    metas = {m: dict(real.rep(name).meta) for m, name in reps.items()}
    shapes = {}
    for m, meta in metas.items():
        shape = list(meta["shape"])
        shape[meta["time_axis"]] = meta["clip_frames"]  # clips without context
        shapes[m] = shape
    batches = [(k, min(batch_size, num - k * batch_size)) for k in range((num + batch_size - 1) // batch_size)]
    todo = [(k, n) for k, n in batches if not (parts / f"fake_{k:05d}.npz").is_file()]
    captions = [real.manifest[i]["caption"] for i in real.indices("train")] if prompted else []
    if prompted and not any(captions):
        raise ValueError(f"{real.path}: the train split has no captions to prompt the text bases with")
    for k, n in report_progress(todo, "fake pairs (batches)") if progress else todo:
        g = torch.Generator().manual_seed(seed * 100_003 + k)
        prompts = [captions[i] for i in torch.randint(len(captions), (n,), generator=g).tolist()] if prompted else []
        x = initial_noise({m: (n, *s) for m, s in shapes.items()}, g, device)
        with counter() as flops:  # the cache's compute counts toward every run trained on it
            pairs = sample(prompted(prompts) if prompted else bases, x, sampler, steps, g, **(sampler_kwargs or {}))
        arrays = {reps[m]: v.float().cpu().numpy() for m, v in pairs.items()}
        write_npz(
            parts / f"fake_{k:05d}.npz",
            **arrays,
            flops=np.array(float(flops.get_total_flops())),
            **({"prompts": np.array(prompts)} if prompts else {}),
        )
    return _consolidate(out, batches, reps, metas, shapes, real, source, settings)


def _consolidate(
    out: Path,
    batches: list[tuple[int, int]],
    reps: dict[str, str],
    metas: dict[str, dict],
    shapes: dict[str, list[int]],
    real: Store,
    source: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Store:
    rows, flops = [], 0.0
    for k, n in batches:
        with np.load(out / "parts" / f"fake_{k:05d}.npz") as part:
            prompts = [str(p) for p in part["prompts"]] if "prompts" in part else [""] * n
            # parts sampled before FLOPs were counted leave the cache's compute unknown (None), never 0
            flops = flops + float(part["flops"]) if flops is not None and "flops" in part else None
        rows += [
            {
                "index": len(rows) + i,
                "id": f"fake_{len(rows) + i:06d}",
                "source": "",
                "start": 0.0,
                "split": "fake",
                "label": -1,
                "label_name": "",
                "caption": prompts[i],
            }
            for i in range(n)
        ]

    def blocks(name: str):
        for k, _ in batches:
            with np.load(out / "parts" / f"fake_{k:05d}.npz") as part:
                yield part[name]

    arrays = {name: (metas[m]["dtype"], tuple(shapes[m])) for m, name in reps.items()}
    rep_meta = {name: {**metas[m], "margin_frames": 0, "shape": list(shapes[m])} for m, name in reps.items()}
    return write_store(
        out,
        rows,
        arrays,
        blocks,
        {
            "dataset": f"fake:{real.metadata['dataset']}",
            "label_names": [],
            "clip_seconds": real.metadata["clip_seconds"],
            "margin_seconds": 0.0,
            "stride_seconds": None,
            "representations": rep_meta,
            "real_store": str(real.path),
            "sampling_tflops": flops / 1e12 if flops is not None else None,
            "bases_sha256": source,
            "cache_settings": settings,
        },
    )
