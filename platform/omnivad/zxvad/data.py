"""zxVAD data (spec §6.1): decoded frames, clip and donor sampling, target ground truth.

Layout of a video set URI (local directory or ``s3://``): video files anywhere below it (sorted by
path). A target set also holds ``annotations.txt``, one line per abnormal video,
``name category start end [start end ...]`` (0-based frames, inclusive ends; the layout
``omnivad.video.synth.write_video_set`` and ``jobs/extract.py`` use); videos without a line are
all-normal. Frames are decoded per worker (its shard of the videos), resized to
``zxvad.frame_size`` and kept as uint8 (N, H, W, 3): memory is frames x H x W x 3 bytes, capped per
video by ``zxvad.max_frames``. Test videos are decoded and scored one at a time.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from omnivad import storage
from omnivad.errors import OmnivadError

ANNOTATIONS = "annotations.txt"


class ZxVADDataError(OmnivadError, ValueError):
    """A video set is empty, too short, or its annotation file is malformed."""


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3|1) -> float32 (N, 3, H, W) in [-1, 1]; gray is replicated to 3 channels."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


def read_annotations(uri: str) -> dict[str, list[tuple[int, int]]]:
    """``annotations.txt`` of a video set directory -> {video file name: [(start, end_exclusive)]}; {} when
    the set has none. Parsed by ``jobs/extract.py``'s reader (inclusive ends in the file)."""
    from omnivad.video.extract import read_annotations as read_intervals
    from omnivad.video.io import VideoError

    path = storage.join(uri, ANNOTATIONS)
    fs, p = storage.filesystem(path)
    if not fs.exists(p):
        return {}
    try:
        parsed = read_intervals(path)
    except VideoError as e:
        raise ZxVADDataError(str(e)) from e
    return {name: [(s, e + 1) for s, e in pairs] for name, (_, pairs) in parsed.items()}


def frame_labels(n_frames: int, intervals: Sequence[tuple[int, int]]) -> np.ndarray:
    y = np.zeros(n_frames, np.int64)
    for s, e in intervals:
        y[s:e] = 1
    return y


def list_set(uri: str) -> list[str]:
    from omnivad.video.io import list_videos

    videos = list_videos(uri)
    if not videos:
        raise ZxVADDataError(f"{uri}: no video files")
    return videos


def load_frames(uris: Sequence[str], size: tuple[int, int], gray: bool, max_frames: int | None, min_len: int) -> list[np.ndarray]:
    """Decode ``uris`` to uint8 (N, H, W, C); videos shorter than ``min_len`` frames are refused by name."""
    from omnivad.video.io import read_frames

    out = []
    for u in uris:
        f = read_frames(u, size=tuple(size), gray=gray, max_frames=max_frames)
        if f.shape[0] < min_len:
            raise ZxVADDataError(f"{u}: {f.shape[0]} frames, a clip needs {min_len}")
        out.append(f)
    return out


def iter_test_videos(uri: str, size: tuple[int, int], gray: bool, max_frames: int | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, frames uint8, frame labels) per test video, decoded one at a time."""
    from omnivad.video.io import read_frames

    ann = read_annotations(uri)
    for u in list_set(uri):
        frames = read_frames(u, size=tuple(size), gray=gray, max_frames=max_frames)
        name = posixpath.basename(u)
        yield name, frames, frame_labels(frames.shape[0], ann.get(name, []))


@dataclass
class Batch:
    clips: torch.Tensor  # (B, T+1, 3, H, W) in [-1, 1]
    base: torch.Tensor  # (B, 3, H, W): the input frame each pseudo-anomaly is pasted into (A4)
    donors: torch.Tensor  # (B, 3, H, W): donor frames for O


class ClipSampler:
    """Clips of ``clip_len + 1`` consecutive frames, start uniform over all valid starts of all videos,
    and one donor frame each (another video when there is one, A5). A pure function of (seed, rank,
    step), so a resumed run replays the same batches."""

    def __init__(self, videos: Sequence[np.ndarray], donors: Sequence[np.ndarray] | None, clip_len: int,
                 batch_size: int, seed: int = 0, rank: int = 0) -> None:
        if not videos:
            raise ZxVADDataError("no source videos on this worker")
        self.videos, self.clip_len, self.batch_size = list(videos), clip_len, batch_size
        self.donors, self.same_set = (list(donors), False) if donors else (self.videos, True)
        starts = [max(v.shape[0] - clip_len, 0) for v in self.videos]
        if sum(starts) == 0:
            raise ZxVADDataError(f"every source video is shorter than {clip_len + 1} frames")
        self.offsets = np.cumsum([0] + starts)
        self.seed, self.rank = seed, rank

    def batch(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, self.rank, step])
        clips, base, donors = [], [], []
        for g in rng.integers(0, self.offsets[-1], self.batch_size):
            vi = int(np.searchsorted(self.offsets, g, side="right") - 1)
            s = int(g - self.offsets[vi])
            clip = self.videos[vi][s : s + self.clip_len + 1]
            clips.append(clip)
            base.append(clip[rng.integers(0, self.clip_len)])
            di = int(rng.integers(0, len(self.donors)))
            if self.same_set and len(self.donors) > 1 and di == vi:
                di = (di + 1 + int(rng.integers(0, len(self.donors) - 1))) % len(self.donors)
            d = self.donors[di]
            donors.append(d[rng.integers(0, d.shape[0])])
        c = to_tensor(np.concatenate(clips)).view(self.batch_size, self.clip_len + 1, 3, *clips[0].shape[1:3])
        return Batch(c, to_tensor(np.stack(base)), to_tensor(np.stack(donors)))
