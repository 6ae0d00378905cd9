"""Video files: listing (local or ``s3://``), decoding with PyAV, and writing small test videos.

Every decoding error is raised as :class:`VideoError` naming the file, so a job can report the
corrupt video by name and skip it or fail (``video.on_error``), never drop it silently.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import numpy as np

from omnivad import storage
from omnivad.errors import OmnivadError

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")


class VideoError(OmnivadError, ValueError):
    """A video file is missing, corrupt or cannot be decoded; the message starts with its URI."""


def list_videos(uri: str, exts: tuple[str, ...] = VIDEO_EXTS) -> list[str]:
    """Video files under a directory (recursively, local or ``s3://``), or ``[uri]`` for one file; sorted."""
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise VideoError(f"{uri}: no such file or directory")
    lower = tuple(e.lower() for e in exts)
    if fs.isfile(path):
        return [uri] if path.lower().endswith(lower) else []
    prefix = "s3://" if uri.startswith("s3://") else ""
    return sorted(prefix + p for p in fs.find(path) if p.lower().endswith(lower))


class _Source:
    """An open container (and, for remote URIs, the fsspec file it reads from, streamed not copied)."""

    def __init__(self, uri: str) -> None:
        self.file = None
        try:
            fs, path = storage.filesystem(uri)
            if uri.startswith("s3://"):
                self.file = fs.open(path, "rb")
                self.container = av.open(self.file, mode="r")
            else:
                self.container = av.open(path, mode="r")
        except (OSError, av.FFmpegError, ValueError) as e:
            self.close()
            raise VideoError(f"{uri}: cannot open video ({e})") from e

    def close(self) -> None:
        if getattr(self, "container", None) is not None:
            self.container.close()
        if self.file is not None:
            self.file.close()


def _expected_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int | None:
    """Frame count the header promises: the stream's frame count, else its duration x fps (None if unknown)."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return None
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base * rate)))
    if container.duration:
        return int(round(container.duration / av.time_base * float(rate)))
    return None


def _convert(frame: av.VideoFrame, size: tuple[int, int] | None, gray: bool) -> np.ndarray:
    """One decoded frame -> uint8 (H, W, 3) RGB or (H, W, 1) gray, resized to ``size=(h, w)``."""
    kwargs: dict = {"format": "gray" if gray else "rgb24"}
    if size is not None:
        kwargs["height"], kwargs["width"] = int(size[0]), int(size[1])
    arr = frame.to_ndarray(**kwargs)
    return arr[..., None] if gray else arr


def iter_frames(
    uri: str,
    size: tuple[int, int] | None = None,
    gray: bool = False,
    max_frames: int | None = None,
    min_fraction: float = 0.95,
) -> Iterator[np.ndarray]:
    """Decode ``uri`` frame by frame (bounded memory); yields uint8 (H, W, 3) or (H, W, 1).

    A video that decodes to fewer than ``min_fraction`` of the frames its header promises (frame count
    or duration) is truncated: :class:`VideoError` (0 turns the check off; not checked with ``max_frames``).
    """
    src = _Source(uri)
    n = 0
    try:
        if not src.container.streams.video:
            raise VideoError(f"{uri}: no video stream")
        stream = src.container.streams.video[0]
        stream.thread_type = "AUTO"
        expected = _expected_frames(src.container, stream)
        for frame in src.container.decode(stream):
            if max_frames is not None and n >= max_frames:
                break
            yield _convert(frame, size, gray)
            n += 1
    except av.FFmpegError as e:
        raise VideoError(f"{uri}: corrupt video after {n} frames ({e})") from e
    finally:
        src.close()
    if n == 0 and max_frames != 0:
        raise VideoError(f"{uri}: no decodable frames")
    if max_frames is None and expected and min_fraction > 0 and n < min_fraction * expected - 1:
        raise VideoError(f"{uri}: truncated video: decoded {n} of the {expected} frames its header promises")


def read_frames(
    uri: str, size: tuple[int, int] | None = None, gray: bool = False, max_frames: int | None = None
) -> np.ndarray:
    """All frames of ``uri`` as uint8 (N, H, W, 3) RGB, or (N, H, W, 1) with ``gray``; ``size=(h, w)``."""
    frames = list(iter_frames(uri, size=size, gray=gray, max_frames=max_frames))
    if not frames:
        c = 1 if gray else 3
        h, w = size if size is not None else (0, 0)
        return np.zeros((0, h, w, c), np.uint8)
    return np.stack(frames)


def video_info(uri: str) -> tuple[int, float, tuple[int, int]]:
    """``(n_frames, fps, (h, w))`` from the container header; ``n_frames`` is counted by demuxing when
    the header does not give it (no decoding), so it can differ from the decodable frames of a
    damaged file."""
    src = _Source(uri)
    container = src.container
    try:
        if not container.streams.video:
            raise VideoError(f"{uri}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        h, w = stream.codec_context.height, stream.codec_context.width
        n = int(stream.frames or 0)
        if n <= 0:
            n = sum(1 for p in container.demux(stream) if p.size > 0)
    except av.FFmpegError as e:
        raise VideoError(f"{uri}: corrupt video ({e})") from e
    finally:
        src.close()
    if fps <= 0 or h <= 0 or w <= 0:
        raise VideoError(f"{uri}: missing frame rate or frame size in the header")
    return n, fps, (h, w)


def write_video(path: str, frames: np.ndarray, fps: float = 25.0, codec: str | None = None) -> None:
    """Encode uint8 (N, H, W, 3) RGB (or (N, H, W, 1) gray) frames to ``path`` (.mp4/.avi/.mkv...).

    ``mpeg4`` at high quality by default (every PyAV wheel has it); H and W must be even.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8:
        raise VideoError(f"{path}: frames must be uint8 (N, H, W, 3|1), got {frames.dtype} {frames.shape}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise VideoError(f"{path}: frame size {h}x{w} must be even for yuv420p")
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    fs, local = storage.filesystem(path)
    buf = io.BytesIO()
    fmt = {".mp4": "mp4", ".avi": "avi", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}.get(
        "." + local.rsplit(".", 1)[-1].lower(), "mp4")
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec or ("libvpx" if fmt == "webm" else "mpeg4"), rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if (codec or "mpeg4") == "mpeg4":
            stream.options = {"qscale": "2"}
            stream.codec_context.qmax = 3
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    parent = local.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(local, "wb") as f:
        f.write(buf.getvalue())
