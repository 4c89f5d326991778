"""The weights resolver (avgen.weights, docs/weights.md) against fake sources: a local folder behind file://
URLs, and huggingface_hub's download functions replaced by copies from a local folder. No network."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import urllib.request
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import LocalEntryNotFoundError

from avgen.cli import weights as weights_cli
from avgen.weights import (
    REGISTRY,
    HashMismatch,
    Weight,
    WeightsIncomplete,
    WeightsMissing,
    record_of,
    resolve,
    weights_dir,
)

REVISION = "0123456789abcdef0123456789abcdef01234567"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty weights dir, online, and a source folder holding one weights file and one hub repo."""
    monkeypatch.setenv("AVGEN_WEIGHTS_DIR", str(tmp_path / "weights"))
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    source = tmp_path / "source"
    pipe = source / "org" / "pipe"
    (pipe / "vae").mkdir(parents=True)
    (source / "model.pt").write_bytes(b"weights v1")
    (pipe / "model_index.json").write_text("{}")
    (pipe / "vae" / "config.json").write_text('{"block_out_channels": [1]}')
    (pipe / "unused.ckpt").write_bytes(b"not in the patterns")
    return source


def register(monkeypatch, entry: Weight) -> Weight:
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    return entry


def url_entry(source: Path, **kw) -> Weight:
    kw.setdefault("sha256", {"model.pt": sha(b"weights v1")})
    return Weight(
        "toy-url", url=(source / "model.pt").as_uri(), filename="model.pt", licence="test", used_by="tests", **kw
    )


@pytest.fixture
def downloads(monkeypatch):
    """Counts every URL opened."""
    opened, real = [], urllib.request.urlopen

    def counting(request, *args, **kwargs):
        opened.append(request.full_url)
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return opened


@pytest.fixture
def fake_hub(tmp_path, env, monkeypatch):
    """huggingface_hub's snapshot_download as a copy of `source/<repo_id>` (its pattern-matched files) into a
    cache; the repo ids it downloaded are returned."""
    calls, cache = [], tmp_path / "hub"

    def snapshot_download(repo_id, revision, repo_type, local_files_only, allow_patterns):
        folder = cache / repo_id / revision
        if local_files_only:
            if not folder.is_dir():
                raise LocalEntryNotFoundError("not cached")
            return str(folder)
        calls.append(repo_id)
        for f in (env / repo_id).rglob("*"):
            rel = f.relative_to(env / repo_id).as_posix()
            if f.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, folder / rel)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_first_use_downloads_and_verifies_then_reads_the_cache(env, monkeypatch, downloads):
    entry = register(monkeypatch, url_entry(env))
    path = resolve("toy-url")
    assert path == weights_dir() / "toy-url" / "model.pt" and path.read_bytes() == b"weights v1"
    assert len(downloads) == 1
    assert record_of(entry)["files"]["model.pt"]["sha256"] == sha(b"weights v1")
    assert resolve("toy-url") == path and len(downloads) == 1  # the second use reads the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve("toy-url") == path and len(downloads) == 1  # and needs no network


def test_a_wrong_hash_is_refused_naming_both_hashes(env, monkeypatch):
    register(monkeypatch, url_entry(env, sha256={"model.pt": "ab" * 32}))
    with pytest.raises(HashMismatch) as error:
        resolve("toy-url")
    assert sha(b"weights v1") in str(error.value) and "ab" * 32 in str(error.value)
    assert "make weights WHICH=toy-url" in str(error.value)
    assert not (weights_dir() / "toy-url" / "model.pt").exists()  # a refused download is not kept


def test_unpinned_weights_are_trusted_on_first_use_then_checked(env, monkeypatch):
    entry = register(monkeypatch, url_entry(env, sha256={}))
    path = resolve("toy-url")
    path.write_bytes(b"weights v2")  # changed after its hash was recorded
    with pytest.raises(HashMismatch, match="recorded on first use") as error:
        resolve("toy-url")
    assert sha(b"weights v1") in str(error.value) and sha(b"weights v2") in str(error.value)
    assert entry.pin_note() == "unpinned: recorded on first use"


def test_offline_without_the_file_says_how_to_get_it(env, monkeypatch, downloads):
    register(monkeypatch, url_entry(env))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsMissing) as error:
        resolve("toy-url")
    message = str(error.value)
    assert "HF_HUB_OFFLINE=1" in message and "make weights WHICH=toy-url" in message
    assert str(weights_dir() / "toy-url" / "model.pt") in message and not downloads


def test_no_route_to_the_source_says_how_to_get_it(env, monkeypatch):
    register(monkeypatch, url_entry(env / "gone"))
    with pytest.raises(WeightsMissing, match="cannot be reached.*make weights WHICH=toy-url"):
        resolve("toy-url")


def test_a_local_path_passes_through_untouched(env, monkeypatch, tmp_path, downloads):
    register(monkeypatch, url_entry(env))
    assert resolve("no/such/file.pt") == Path("no/such/file.pt")
    assert resolve(env / "model.pt") == env / "model.pt"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy-url").mkdir()  # a local folder wins over a registry name
    assert resolve("toy-url") == Path("toy-url") and not downloads


def test_hub_snapshot_through_the_hub_client(env, monkeypatch, fake_hub):
    entry = register(
        monkeypatch,
        Weight(
            "toy-pipe",
            repo_id="org/pipe",
            revision=REVISION,
            patterns=("model_index.json", "vae/*"),
            sha256={"vae/config.json": sha(b'{"block_out_channels": [1]}')},
            licence="test",
            used_by="tests",
        ),
    )
    path = resolve("toy-pipe")
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == [
        "model_index.json",
        "vae/config.json",
    ]  # only what the patterns name
    assert resolve("toy-pipe/vae") == path / "vae" and fake_hub == ["org/pipe"]  # cached: one download
    (path / "other_tool.bin").write_bytes(b"fetched by another tool at the same commit")
    assert resolve("toy-pipe") == path
    assert set(record_of(entry)["files"]) == {"model_index.json", "vae/config.json"}  # only the entry's files
    (path / "vae" / "config.json").unlink()
    with pytest.raises(WeightsIncomplete, match="lacks vae/config.json"):
        resolve("toy-pipe")


def hub_cache_file(root: Path, blob_name: str, content: bytes) -> Path:
    """A file as huggingface_hub caches it: snapshots/<commit>/<file> -> blobs/<LFS SHA-256 or git blob id>."""
    blob = root / "blobs" / blob_name
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    link = root / "snapshots" / REVISION / blob_name[:8] / "model.pt"
    link.parent.mkdir(parents=True)
    os.symlink(blob, link)
    return link


def test_hub_file_is_checked_against_its_blob_name(env, monkeypatch, tmp_path):
    """The hub names an LFS file's blob by its SHA-256 and a small file's by its git blob id: content that does
    not hash to its name is refused, content that does is accepted (no registry hash needed)."""
    entry = register(
        monkeypatch,
        Weight("toy-file", repo_id="org/file", revision=REVISION, filename="model.pt", licence="test", used_by="tests"),
    )
    corrupted = hub_cache_file(tmp_path / "hub", sha(b"what the hub served"), b"corrupted on disk")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: str(corrupted))
    with pytest.raises(HashMismatch, match="hub's LFS SHA-256") as error:
        resolve("toy-file")
    assert sha(b"corrupted on disk") in str(error.value) and sha(b"what the hub served") in str(error.value)
    git_id = hashlib.sha1(b"blob 5\0small").hexdigest()
    wrong = hub_cache_file(tmp_path / "hub", git_id, b"SMALL")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: str(wrong))
    with pytest.raises(HashMismatch, match=f"expected {git_id}"):
        resolve("toy-file")
    (tmp_path / "hub" / "blobs" / git_id).write_bytes(b"small")
    assert resolve("toy-file") == wrong and record_of(entry)["files"]["model.pt"]["sha256"] == sha(b"small")


def test_the_loaders_take_names(env, monkeypatch, fake_hub):
    from avgen.methods.mmdisco.text_bases import check_layout
    from avgen.metrics.extractors import require_file

    register(monkeypatch, url_entry(env))
    assert require_file("toy-url", "evaluate.fvd.weights") == weights_dir() / "toy-url" / "model.pt"
    (env / "org" / "audioldm").mkdir()
    for sub in ("unet", "text_encoder", "tokenizer", "scheduler"):
        (env / "org" / "audioldm" / sub).mkdir()
        (env / "org" / "audioldm" / sub / "config.json").write_text("{}")
    register(
        monkeypatch,
        Weight(
            "toy-audioldm",
            repo_id="org/audioldm",
            revision=REVISION,
            patterns=("*/*",),
            licence="test",
            used_by="tests",
        ),
    )
    assert check_layout("toy-audioldm", "audioldm", "method.bases.text.audio").name == REVISION


def test_the_cli_fetches_and_prints_the_table(env, monkeypatch, capsys):
    register(monkeypatch, url_entry(env))
    assert weights_cli.run(["which=toy-url", "fetch=false"]) == 0
    assert re.search(r"toy-url\s+missing", capsys.readouterr().out)
    assert weights_cli.run(["which=toy-url"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"toy-url\s+verified\s+sha256 " + sha(b"weights v1")[:16], out)
    assert str(weights_dir()) in out
    monkeypatch.setitem(REGISTRY, "toy-url", url_entry(env / "gone"))
    shutil.rmtree(weights_dir())
    assert weights_cli.run(["which=toy-url"]) == 1
    assert "make weights WHICH=toy-url" in capsys.readouterr().err
    assert weights_cli.run(["which=nothing-of-that-name"]) == 2


def test_registry_entries_are_well_formed_and_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "weights.md").read_text()
    for name, entry in REGISTRY.items():
        assert entry.name == name and entry.licence and entry.used_by
        assert entry.revision is None or re.fullmatch(r"[0-9a-f]{40}", entry.revision)
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in entry.sha256.values()), name
        assert f"`{name}`" in docs, f"docs/weights.md does not list {name}"
        for h in entry.sha256.values():
            assert h in docs, f"docs/weights.md does not list {name}'s hash {h}"
    with pytest.raises(ValueError, match="40-digit commit"):
        Weight("bad", repo_id="org/x", revision="main", filename="x", licence="-", used_by="-")


def test_doctor_row_warns_about_missing_weights(env, monkeypatch):
    from avgen.utils.doctor import check_weights

    for name in list(REGISTRY):  # only the test's entry (monkeypatch puts the real ones back)
        monkeypatch.delitem(REGISTRY, name)
    register(monkeypatch, url_entry(env))
    row = check_weights()
    assert row.status == "warn" and "toy-url" in row.detail and "make weights WHICH=" in row.detail
    resolve("toy-url")
    assert check_weights().status == "ok"
    assert json.loads((weights_dir() / "lock.json").read_text())["weights"]["toy-url"]["tree"]
