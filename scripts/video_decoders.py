"""Frame exactness and random-access throughput of the installed `decord` (decord 0.6.0, or decord2 installed in
its place) and of PyAV, against PyAV's full decode of the same files (docs/datasets.md, "Video decoding"):
`python scripts/video_decoders.py <scratch dir>` (after `make data`, for the synthetic files). Prints JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import av
import decord
import numpy as np

from avgen.data.media import write_mp4

SIZES = ((64, 64), (8, 8), (16, 16), (48, 32), (100, 60))  # (width, height); the narrow ones trip decord


def pyav_frames(path: Path, idx: list[int] | None = None) -> np.ndarray:
    """Frames `idx` (all when None) decoded by PyAV, up to the last one wanted: (N, H, W, 3) uint8."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if idx is None or i in idx:
                frames.append(frame.to_ndarray(format="rgb24"))
            if idx is not None and i >= max(idx):
                break
    return np.stack(frames)


def decord_frames(path: Path, idx: list[int] | None = None) -> np.ndarray:
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch(list(range(len(reader))) if idx is None else idx).asnumpy()


def test_files(out: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files = {}
    for w, h in SIZES:
        path = out / f"clip_{w}x{h}.mp4"
        if not path.exists():
            frames = (rng.uniform(size=(24, h, w, 3)) * 255).astype(np.uint8)
            write_mp4(path, frames, 24, np.zeros(16000, np.float32), 16000)
        files[f"{w}x{h}"] = path
    good = files["64x64"].read_bytes()
    (out / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (out / "junk.mp4").write_bytes(b"\x00" * 4096)
    return files


def throughput(read, files: list[Path], passes: int = 3) -> float:
    """Frames/s reading 8 random sorted frames from each file, `passes` times."""
    rng, count, start = np.random.default_rng(1), 0, time.perf_counter()
    for _ in range(passes):
        for path in files:
            idx = sorted(rng.choice(72, 8, replace=False).tolist())  # the synthetic files have 72 frames
            read(path, idx)
            count += 8
    return count / (time.perf_counter() - start)


def main(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = test_files(out)
    synthetic = sorted(Path("data/synthetic/raw").rglob("*.mp4"))[:20]
    result = {"decord_version": getattr(decord, "__version__", "?"), "max_abs_diff": {}, "errors": {}}
    for name, path in [*files.items(), *((f"synthetic_{i}", p) for i, p in enumerate(synthetic[:5]))]:
        reference = pyav_frames(path)
        try:
            got = decord_frames(path)
            same = got.shape == reference.shape
            result["max_abs_diff"][name] = int(np.abs(got.astype(int) - reference).max()) if same else "shape"
        except Exception as e:  # decord raises its own error types
            result["errors"][name] = str(e)[:160]
    for name in ("truncated", "junk"):
        try:
            decord_frames(out / f"{name}.mp4")
            result["errors"][name] = "decoded without an error"
        except Exception as e:
            result["errors"][name] = f"raised {type(e).__name__}"
    if synthetic:
        result["decord_frames_per_s"] = throughput(decord_frames, synthetic)
        result["pyav_frames_per_s"] = throughput(pyav_frames, synthetic)
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=1))
