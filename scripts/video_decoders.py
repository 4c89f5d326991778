"""Frame exactness and random-access throughput of the installed `decord` (decord 0.6.0, or decord2 installed in
its place) against PyAV's decode of the same files (docs/datasets.md, "Video decoding"):
`python scripts/video_decoders.py <scratch dir>` (needs `make data` for the synthetic files)."""

import json
import sys
import time
from pathlib import Path

import av
import decord
import numpy as np

from avgen.data.media import write_mp4

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
files = {}
for w, h in ((64, 64), (8, 8), (16, 16), (48, 32), (100, 60)):
    frames = (rng.uniform(size=(24, h, w, 3)) * 255).astype(np.uint8)
    p = out / f"clip_{w}x{h}.mp4"
    if not p.exists():
        write_mp4(p, frames, 24, np.zeros(16000, np.float32), 16000)
    files[f"{w}x{h}"] = p
# the synthetic store's raw files, if present
raw = sorted(Path("/work/main/data/synthetic/raw").rglob("*.mp4"))[:20]


def pyav_frames(p):
    with av.open(str(p)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


res = {"decord_version": getattr(decord, "__version__", "?"), "exact": {}, "errors": {}}
for name, p in list(files.items()) + [(f"synthetic_{i}", q) for i, q in enumerate(raw[:5])]:
    ref = pyav_frames(p)
    try:
        r = decord.VideoReader(str(p), ctx=decord.cpu(0), num_threads=1)
        got = r.get_batch(list(range(len(r)))).asnumpy()
        res["exact"][name] = {
            "shape_ok": got.shape == ref.shape,
            "frames": [len(r), len(ref)],
            "max_abs_diff": int(np.abs(got.astype(int) - ref.astype(int)).max()) if got.shape == ref.shape else None,
        }
    except Exception as e:
        res["errors"][name] = str(e)[:200]
# throughput: random access of 8 frames from each of 20 synthetic files, repeated
idx_rng = np.random.default_rng(1)
t = time.perf_counter()
n = 0
for rep in range(3):
    for p in raw:
        r = decord.VideoReader(str(p), ctx=decord.cpu(0), num_threads=1)
        idx = np.sort(idx_rng.choice(len(r), 8, replace=False)).tolist()
        r.get_batch(idx).asnumpy()
        n += 8
res["random_access_frames_per_s"] = n / (time.perf_counter() - t)
# bad media: truncated and garbage files
bad = out / "truncated.mp4"
bad.write_bytes(files["64x64"].read_bytes()[: len(files["64x64"].read_bytes()) // 2])
junk = out / "junk.mp4"
junk.write_bytes(b"\x00" * 4096)
for name, p in (("truncated", bad), ("junk", junk)):
    try:
        r = decord.VideoReader(str(p), ctx=decord.cpu(0), num_threads=1)
        got = r.get_batch(list(range(len(r)))).asnumpy()
        res["errors"][name] = f"no error: {got.shape}"
    except Exception as e:
        res["errors"][name] = "raised: " + type(e).__name__
print(json.dumps(res, indent=1))
