"""Embedded synthetic audio-video dataset with exactly known alignment.

Each clip shows one coloured ball moving horizontally on a dark background. It bounces off the left and
right walls; the speed is redrawn at every bounce, so the bounce times are irregular. Every bounce makes a
decaying tone start at exactly that time (temporal correspondence), and the ball's colour class fixes the
tone's pitch (semantic correspondence). The motion is simulated from `preroll` seconds before the file's
first sample, so the file starts mid-motion with the tails of earlier tones ringing: its first seconds look
and sound like any other (a file that starts silent would let a time-shifted negative be recognised from its
audio alone, without looking at the video). The ground truth (bounce times, class, colour, pitch) is written
beside each mp4 as a JSON sidecar.

Clips are real mp4 files (H.264 + AAC via PyAV) at ordinary rates so that the preparation path decodes them
exactly as it decodes user data; the small training representation is made later by `avgen prepare`.
Every clip is generated from its own seed (`seed`, split, index), so a clip does not depend on how many
clips were generated.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avgen.data.media import write_mp4
from avgen.utils.io import write_json
from avgen.utils.progress import progress as report_progress
from avgen.utils.threads import one_thread_worker

# Class table: the colour a class is drawn in (RGB in [0, 1]) and the colour names for reports.
CLASS_COLOURS = np.array(
    [
        [1.00, 0.15, 0.15],  # red
        [0.15, 1.00, 0.15],  # green
        [0.25, 0.35, 1.00],  # blue
        [1.00, 1.00, 0.15],  # yellow
        [1.00, 0.15, 1.00],  # magenta
        [0.15, 1.00, 1.00],  # cyan
    ],
    dtype=np.float32,
)
CLASS_NAMES = ["red", "green", "blue", "yellow", "magenta", "cyan"]
SPLITS = ("train", "test", "val")  # the index is part of each clip's seed: new splits go last


def class_pitches(num_classes: int, low_hz: float = 300.0, high_hz: float = 3000.0) -> np.ndarray:
    """Tone frequency of each class, geometrically spaced so classes fall in distinct mel bands."""
    if num_classes == 1:
        return np.array([low_hz])
    return low_hz * (high_hz / low_hz) ** (np.arange(num_classes) / (num_classes - 1))


@dataclass
class SyntheticConfig:
    num_train: int = 2048  # clips in the train split
    num_test: int = 256  # clips in the test split
    num_val: int = 0  # clips in the validation split (settings are chosen there, never on test)
    seed: int = 0  # base seed; clip i of split s uses (seed, s, i)
    num_classes: int = 4  # K colour/pitch classes (at most len(CLASS_COLOURS))
    duration: float = 3.0  # seconds per clip (the 1.5 s window, 0.5 s margins, edges, slack)
    fps: int = 24  # video frame rate of the mp4
    size: int = 64  # square frame side in pixels (even: H.264 4:2:0)
    sample_rate: int = 16000  # audio rate of the mp4
    ball_radius: float = 0.12  # as a fraction of the frame side
    bounce_interval: tuple[float, float] = (0.35, 1.0)  # seconds between bounces, drawn per bounce
    tone_amplitude: float = 0.6  # peak tone amplitude (long, loud tones learn on CPU)
    tone_decay: float = 0.25  # exponential decay time constant of a tone, seconds
    noise_floor: float = 0.002  # std of the clean background noise
    background: float = 0.08  # grey level of the background
    crf: int = 12  # H.264 quality (low = near lossless)
    preroll: float = 2.0  # seconds simulated before the first sample (several bounces: no quiet start)

    def __post_init__(self) -> None:
        if not 1 <= self.num_classes <= len(CLASS_COLOURS):
            raise ValueError(f"num_classes must be in 1..{len(CLASS_COLOURS)}, got {self.num_classes}")
        if self.size % 2:
            raise ValueError(f"size must be even for H.264 4:2:0, got {self.size}")
        lo, hi = self.bounce_interval
        if not 0 < lo <= hi:
            raise ValueError(f"bounce_interval must satisfy 0 < low <= high, got {self.bounce_interval}")
        if self.preroll < 0:
            raise ValueError(f"preroll must be >= 0 seconds, got {self.preroll}")


@dataclass
class ClipTruth:
    """Ground truth of one clip, as written to its sidecar JSON."""

    clip_id: str
    split: str
    label: int
    colour: str
    pitch_hz: float
    event_times: list[float]  # seconds from the first video frame (bounces inside the file)
    y: float  # vertical centre, fraction of the frame side
    positions: list[float] = field(repr=False)  # x centre per video frame, fraction of frame side


def _trajectory(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """x(t) of the ball at every video frame time, and the exact wall-hit times (from -preroll on)."""
    r = cfg.ball_radius
    left, right = r, 1.0 - r
    travel = right - left
    x = rng.uniform(left, right)
    direction = rng.choice([-1.0, 1.0])
    t = -cfg.preroll
    events: list[float] = []
    knots_t, knots_x = [t], [x]
    while t < cfg.duration:
        interval = rng.uniform(*cfg.bounce_interval)
        speed = travel / interval  # a full wall-to-wall crossing takes `interval` seconds
        wall = right if direction > 0 else left
        t += abs(wall - x) / speed
        x = wall
        knots_t.append(t)
        knots_x.append(x)
        if t < cfg.duration:
            events.append(t)
        direction = -direction
    frame_times = np.arange(round(cfg.duration * cfg.fps)) / cfg.fps
    return np.interp(frame_times, knots_t, knots_x), events


def render_video(cfg: SyntheticConfig, xs: np.ndarray, y: float, colour: np.ndarray) -> np.ndarray:
    """Anti-aliased disc per frame: (F, H, W, 3) uint8."""
    s = cfg.size
    grid = (np.arange(s, dtype=np.float32) + 0.5) / s
    gy, gx = grid[:, None], grid[None, :]

    def shade(alpha: np.ndarray) -> np.ndarray:  # (..., 1) coverage -> uint8 RGB
        frames = cfg.background * (1 - alpha) + colour[None, None, None, :] * alpha
        return (frames * 255 + 0.5).astype(np.uint8)

    # only the rows the disc can reach (its edge lies within ball_radius * s + 0.5 px of y) are shaded: every
    # other pixel has coverage 0, i.e. the background, so the frames are those of shading the whole frame
    band = np.flatnonzero(np.abs(gy[:, 0] - y) * s < cfg.ball_radius * s + 0.5)
    dist = np.sqrt((gx[None] - xs[:, None, None]) ** 2 + (gy[None, band] - y) ** 2) * s  # (F, rows, W) in pixels
    out = np.broadcast_to(shade(np.zeros((1, 1, 1, 1))), (len(xs), s, s, 3)).copy()
    out[:, band] = shade(np.clip(cfg.ball_radius * s + 0.5 - dist, 0.0, 1.0)[..., None])
    return out


def render_audio(cfg: SyntheticConfig, events: list[float], pitch: float, rng: np.random.Generator) -> np.ndarray:
    """Decaying tones starting exactly at the events (earlier ones ring into the file), over a clean noise
    floor: (samples,) float32."""
    n = round(cfg.duration * cfg.sample_rate)
    t = np.arange(n) / cfg.sample_rate
    wav = rng.normal(0.0, cfg.noise_floor, n)
    for e in events:
        dt = t - e
        on = dt >= 0
        wav[on] += cfg.tone_amplitude * np.exp(-dt[on] / cfg.tone_decay) * np.sin(2 * np.pi * pitch * dt[on])
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def make_clip(cfg: SyntheticConfig, split: str, index: int) -> tuple[ClipTruth, np.ndarray, np.ndarray]:
    """Generate one clip in memory: its truth, frames (F, H, W, 3) uint8 and audio (samples,)."""
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), index])
    label = int(rng.integers(cfg.num_classes))
    pitch = float(class_pitches(cfg.num_classes)[label])
    y = float(rng.uniform(cfg.ball_radius, 1 - cfg.ball_radius))
    xs, events = _trajectory(cfg, rng)
    frames = render_video(cfg, xs, y, CLASS_COLOURS[label])
    audio = render_audio(cfg, events, pitch, rng)
    truth = ClipTruth(
        clip_id=f"{split}_{index:06d}",
        split=split,
        label=label,
        colour=CLASS_NAMES[label],
        pitch_hz=pitch,
        event_times=[float(e) for e in events if e >= 0],
        y=y,
        positions=[float(x) for x in xs],
    )
    return truth, frames, audio


def _write_one(args: tuple[SyntheticConfig, str, int, str]) -> str:
    cfg, split, index, out_dir = args
    truth, frames, audio = make_clip(cfg, split, index)
    clip_dir = Path(out_dir) / split
    mp4 = clip_dir / f"{truth.clip_id}.mp4"
    sidecar = clip_dir / f"{truth.clip_id}.json"
    write_mp4(mp4, frames, cfg.fps, audio, cfg.sample_rate, cfg.crf)
    write_json(sidecar, asdict(truth))
    return truth.clip_id


def generate(cfg: SyntheticConfig, out_dir: str | os.PathLike, workers: int = 0, progress: bool = True) -> Path:
    """Write the dataset under `out_dir/<split>/<clip_id>.{mp4,json}` plus `out_dir/dataset.json`.

    Resumable: clips whose sidecar exists are not regenerated. Returns `out_dir`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / "dataset.json"
    # Written first, so that a resumed run can never mix clips of two configs in one directory.
    if info_path.exists():
        previous = json.loads(info_path.read_text())
        if not _extends(previous, _config_dict(cfg)):
            raise ValueError(
                f"{out} holds a synthetic dataset generated with another config ({info_path}); "
                "choose a new directory or delete it (clip counts may only grow)"
            )
    # every clip has its own seed, so more clips per split extend a dataset without changing the others
    write_json(info_path, _config_dict(cfg))
    counts = (cfg.num_train, cfg.num_test, cfg.num_val)
    jobs = [
        (cfg, split, i, str(out))
        for split, n in zip(SPLITS, counts)
        for i in range(n)
        if not (out / split / f"{split}_{i:06d}.json").exists()
    ]  # the sidecar is written last
    workers = workers if workers > 0 else (os.cpu_count() or 1)
    show = (lambda items: report_progress(items, "synthetic clips", len(jobs))) if progress and jobs else (lambda x: x)
    if workers == 1 or len(jobs) <= 1:
        for job in show(jobs):
            _write_one(job)
    else:
        with ProcessPoolExecutor(workers, initializer=one_thread_worker) as pool:
            for _ in show(pool.map(_write_one, jobs, chunksize=16)):
                pass
    return out


def _extends(previous: dict, new: dict) -> bool:
    """Whether `new` generates `previous`'s clips and maybe more: the same settings, counts not smaller."""
    counts = {f"num_{s}" for s in SPLITS}
    same = {k: v for k, v in previous.items() if k not in counts} == {k: v for k, v in new.items() if k not in counts}
    return same and all(new.get(k, 0) >= previous.get(k, 0) for k in counts)


def _config_dict(cfg: SyntheticConfig) -> dict:
    d = asdict(cfg)
    d["bounce_interval"] = list(d["bounce_interval"])
    return d


def read_truth(mp4_path: str | os.PathLike) -> dict | None:
    """The sidecar of a synthetic clip, or None for a file without one."""
    sidecar = Path(mp4_path).with_suffix(".json")
    return json.loads(sidecar.read_text()) if sidecar.exists() else None
