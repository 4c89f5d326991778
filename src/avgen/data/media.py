"""Decoding media files: video frames with decord, audio with PyAV, on one time axis.

Time zero is the first video frame. Audio samples are placed on that axis from the streams' start times,
so an audio track that starts late or early in the container stays aligned with the picture.
Every failure is a `MediaError` whose message is a one-line reason suitable for a skip report.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import av
import librosa
import numpy as np

from avgen.utils.io import atomic_path


class MediaError(Exception):
    """A file that cannot be prepared; the message is the one-line reason."""


@dataclass(frozen=True)
class MediaInfo:
    path: str
    video_duration: float  # seconds of picture
    audio_duration: float  # seconds of sound, from time zero (the first video frame)
    fps: float
    num_frames: int
    width: int
    height: int
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        """Seconds where both picture and sound exist."""
        return min(self.video_duration, self.audio_duration)


def _stream_start(stream: av.stream.Stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


class MediaFile:
    """One audio-video file opened for random access. Decoded audio is cached per sample rate."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        p = Path(path)
        if not p.is_file():
            raise MediaError("not a file")
        if p.stat().st_size == 0:
            raise MediaError("zero-byte file")
        try:
            container = av.open(self.path)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"cannot open container: {_short(e)}") from None
        with container:
            if not container.streams.video:
                raise MediaError("no video stream (audio-only or not a video file)")
            if not container.streams.audio:
                raise MediaError("no audio stream")
            vstream, astream = container.streams.video[0], container.streams.audio[0]
            width, height = int(vstream.codec_context.width or 0), int(vstream.codec_context.height or 0)
            self._video_start = _stream_start(vstream)
            self._audio_start = _stream_start(astream)
            sample_rate = int(astream.codec_context.sample_rate or 0)
            channels = int(astream.codec_context.channels or 0)
        if sample_rate <= 0:
            raise MediaError("audio stream has no sample rate")
        try:
            import decord

            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=1)
            n = len(self._reader)
            if n and self._reader[0].shape != (height, width, 3):
                # decord 0.6.0 mis-strides some narrow frames (widths 8, 16, 48 seen: rows come back padded and
                # get_batch fails). Decoding to a width that is a multiple of 32, height scaled alike, avoids
                # it; the aspect ratio changes by under one pixel and frames are centre-cropped/resized later.
                new_w = int(math.ceil(width / 32) * 32)
                new_h = max(2, int(round(height * new_w / width)))
                self._reader = decord.VideoReader(
                    self.path, ctx=decord.cpu(0), num_threads=1, width=new_w, height=new_h
                )
            stamps = self._reader.get_frame_timestamp(np.arange(n)) if n else np.zeros((0, 2))
        except Exception as e:  # decord raises its own DECORDError / RuntimeError types
            raise MediaError(f"cannot decode video: {_short(e)}") from None
        if n < 2:
            raise MediaError(f"video has {n} frame(s); at least 2 are needed")
        self._frame_starts = stamps[:, 0] - stamps[0, 0]  # seconds, time zero = first frame
        fps = float(self._reader.get_avg_fps())
        video_duration = float(stamps[-1, 1] - stamps[0, 0])
        self._audio_cache: dict[int, np.ndarray] = {}
        native = self._decode_audio_native()
        self._native = native
        audio_duration = self._audio_offset + native.shape[-1] / sample_rate
        self.info = MediaInfo(
            self.path, video_duration, audio_duration, fps, n, width, height, sample_rate, channels or native.shape[0]
        )

    # ----------------------------------------------------------------------------------------- video
    def frames_at(self, times: np.ndarray) -> np.ndarray:
        """The frames on screen at `times` (seconds): (N, H, W, 3) uint8."""
        idx = np.searchsorted(self._frame_starts, np.asarray(times) + 1e-6, side="right") - 1
        idx = np.clip(idx, 0, len(self._frame_starts) - 1)
        try:
            return self._reader.get_batch(idx.tolist()).asnumpy()
        except Exception as e:
            raise MediaError(f"cannot decode frames: {_short(e)}") from None

    # ----------------------------------------------------------------------------------------- audio
    @property
    def _audio_offset(self) -> float:
        return self._first_audio_time - self._video_start

    def _decode_audio_native(self) -> np.ndarray:
        """All audio at the native rate, (channels, samples) float32."""
        chunks = []
        self._first_audio_time = self._audio_start
        try:
            with av.open(self.path) as container:
                stream = container.streams.audio[0]
                for i, frame in enumerate(container.decode(stream)):
                    if i == 0 and frame.pts is not None:
                        self._first_audio_time = float(frame.pts * frame.time_base)
                    arr = frame.to_ndarray()
                    if frame.format.is_planar:
                        chunks.append(arr.reshape(len(frame.layout.channels), -1))
                    else:  # packed: (1, samples * channels), interleaved
                        chunks.append(arr.reshape(-1, len(frame.layout.channels)).T)
        except av.FFmpegError as e:
            if not chunks:
                raise MediaError(f"cannot decode audio: {_short(e)}") from None
            # A truncated file: keep what decoded; the usable duration shrinks accordingly.
        if not chunks:
            raise MediaError("audio stream holds no samples")
        audio = np.concatenate(chunks, axis=1)
        if audio.dtype.kind == "i":  # s16/s32 -> [-1, 1]
            audio = audio.astype(np.float32) / np.iinfo(audio.dtype).max
        return audio.astype(np.float32)

    def track(self, sample_rate: int) -> np.ndarray:
        """The whole audio track, mono at `sample_rate` (soxr_hq, as librosa.load), from its first sample."""
        if sample_rate not in self._audio_cache:
            mono = self._native.mean(axis=0)
            self._audio_cache[sample_rate] = librosa.resample(
                mono, orig_sr=self.info.sample_rate, target_sr=sample_rate, res_type="soxr_hq"
            ).astype(np.float32)
        return self._audio_cache[sample_rate]

    def audio(self, sample_rate: int, start: float, duration: float) -> np.ndarray:
        """Mono audio at `sample_rate` for [start, start + duration) on the video's time axis: (samples,).

        Channels are averaged (mono, stereo, 5.1 alike); times outside the track read as silence.
        """
        track = self.track(sample_rate)
        n = int(round(duration * sample_rate))
        first = int(round((start - self._audio_offset) * sample_rate))
        out = np.zeros(n, dtype=np.float32)
        lo, hi = max(first, 0), min(first + n, track.shape[0])
        if hi > lo:
            out[lo - first : hi - first] = track[lo:hi]
        return out


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:160] if text else type(e).__name__


def write_mp4(
    path: Path, frames: np.ndarray, fps: int, audio: np.ndarray | None, sample_rate: int, crf: int = 12
) -> None:
    """Write (F, H, W, 3) uint8 frames and (C, samples) or (samples,) float audio as H.264 + AAC, atomically."""
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            vs = container.add_stream("libx264", rate=fps)
            vs.height, vs.width = frames.shape[1:3]
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": "veryfast"}
            if audio is not None:
                audio = np.atleast_2d(audio).astype(np.float32)  # (C, samples)
                layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio.shape[0]]
                aus = container.add_stream("aac", rate=sample_rate)
                aus.layout = layout
                aus.options = {"aac_coder": "fast"}  # the default two-loop search is 3x slower
            for frame in frames:
                for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in vs.encode():
                container.mux(packet)
            if audio is not None:
                block = 1024
                for start in range(0, audio.shape[1], block):
                    chunk = np.ascontiguousarray(audio[:, start : start + block]).reshape(1, -1, order="F")
                    # packed 'flt' wants (1, samples * channels) interleaved
                    af = av.AudioFrame.from_ndarray(chunk, format="flt", layout=layout)
                    af.sample_rate = sample_rate
                    af.pts = start
                    for packet in aus.encode(af):
                        container.mux(packet)
                for packet in aus.encode():
                    container.mux(packet)
