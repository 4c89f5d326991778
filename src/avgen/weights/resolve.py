"""Registry name (or local path) -> verified local path; downloads on first use (docs/weights.md).

Where an entry is looked for, in order: `<weights dir>/<name>` (a URL download, or weights put there by
hand), then huggingface_hub's own cache (`HF_HOME` / `HF_HUB_CACHE`), so that a snapshot other tools already
fetched is reused. Missing, it is downloaded (hub entries through huggingface_hub at the pinned commit,
URL entries into `<weights dir>/<name>`) unless offline, and always verified (verify.py) before use.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from avgen.weights.registry import REGISTRY, Weight
from avgen.weights.verify import HashMismatch, verify, weights_dir


class WeightsMissing(FileNotFoundError):
    """Weights that are not on this machine and cannot be downloaded now."""


def is_offline() -> bool:
    """HF_HUB_OFFLINE=1 (read now, not when huggingface_hub was imported) forbids every download."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return flag.upper() in {"1", "ON", "YES", "TRUE"} or constants.HF_HUB_OFFLINE


def manual_location(entry: Weight) -> Path:
    """Where a URL entry is downloaded to, and where weights fetched elsewhere may be put by hand."""
    folder = weights_dir() / entry.name
    return folder if entry.is_snapshot else folder / entry.file_key


def hub_cache_location(entry: Weight) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=entry.repo_id, repo_type=entry.repo_type)


def _from_hub(entry: Weight, local_only: bool) -> Path:
    import huggingface_hub as hub  # module attributes, so that tests can stand in for the hub

    common = dict(
        repo_id=entry.repo_id, revision=entry.revision, repo_type=entry.repo_type, local_files_only=local_only
    )
    if entry.is_snapshot:
        return Path(hub.snapshot_download(allow_patterns=list(entry.patterns), **common))
    return Path(hub.hf_hub_download(filename=entry.filename, **common))


def _from_url(entry: Weight) -> Path:
    """Stream the URL to a private temporary file beside its destination, then rename (never a partial file)."""
    dest = manual_location(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    request = urllib.request.Request(entry.url, headers={"User-Agent": "avgen"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(part, "wb") as f:
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def locate(entry: Weight) -> Path | None:
    """The entry's local copy, without downloading or hashing anything (None when absent)."""
    manual = manual_location(entry)
    if manual.is_file() or (entry.is_snapshot and manual.is_dir() and any(manual.iterdir())):
        return manual
    if entry.url:
        return None
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return _from_hub(entry, local_only=True)
    except (OSError, EntryNotFoundError):  # not in the cache (or only partly)
        return None


def missing_message(entry: Weight, why: str) -> str:
    where = (
        f"copy its hub cache folder ({hub_cache_location(entry)}) into this machine's hub cache"
        if entry.repo_id
        else f"copy {manual_location(entry)} here"
    )
    what = "the files (a folder)" if entry.is_snapshot else "the file"
    return (
        f"weights {entry.name!r} are not on this machine and {why}: run `make weights WHICH={entry.name}` "
        f"where there is network and {where}, or put {what} from {entry.source} at {manual_location(entry)}"
    )


def fetch(entry: Weight) -> Path:
    """The entry's verified local path, downloaded first if absent (module docstring)."""
    path, downloaded = locate(entry), False
    if path is None:
        if is_offline():
            raise WeightsMissing(missing_message(entry, "HF_HUB_OFFLINE=1 forbids downloading them"))
        from huggingface_hub.errors import EntryNotFoundError

        try:
            path, downloaded = (_from_url(entry) if entry.url else _from_hub(entry, local_only=False)), True
        except (OSError, EntryNotFoundError) as e:  # no route, no such file, ...
            raise WeightsMissing(
                missing_message(
                    entry,
                    f"its source cannot be reached ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
                )
            ) from e
    try:
        verify(entry, path)
    except HashMismatch:
        if downloaded and entry.url:
            path.unlink(missing_ok=True)  # a refused download is not kept where it would be found again
        raise
    return path


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A local path, untouched (a local path works wherever a name does and wins over one), or a registry
    name, optionally followed by a path inside a snapshot (`realistic-vision-v5.1/vae`), fetched and verified."""
    text = str(name_or_path)
    local = Path(text).expanduser()
    name, _, inside = text.partition("/")
    if local.exists() or name not in REGISTRY:
        return local
    entry = REGISTRY[name]
    if inside and not entry.is_snapshot:
        raise ValueError(f"{text}: weights {name} are one file, there is no {inside!r} inside them")
    path = fetch(entry)
    return path / inside if inside else path


def fingerprint(path: str | os.PathLike) -> dict[str, str]:
    """{file, sha256} of weights (a local path or a registry name, avgen.weights): a file's SHA-256, or for a
    directory the SHA-256 over its files' relative paths and contents in sorted order (a model directory's
    config and weights alike). `file` is the name as configured: a registry name stays a name."""
    import hashlib

    p = resolve(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return {"file": Path(path).name, "sha256": digest.hexdigest()}
