"""Snippet sampling: 16-frame snippets at the video's frame rate (or a target fps), resized and cropped.

A video of N frames (after optional resampling) gives ``T = floor(N / 16)`` snippets with
``video.last_snippet=drop`` (what the I3D extractors behind the community features do: a trailing
partial clip is not fed to the network), or ``ceil(N / 16)`` with ``pad`` (the last snippet is completed
by repeating its last frame). The frame-level ground truth always has N entries (``n_frames``); the
evaluation repeats each snippet score over 16 frames and pads the tail with the last score.

Frames are resized so the shorter side is ``video.resize`` (aspect kept), then cropped to
``crop_size``: the centre crop, or ten crops (top-left, top-right, bottom-left, bottom-right, centre,
then the same five flipped horizontally: torchvision's ``TenCrop`` order). Crops become the corpus
``crops`` axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from omnivad.config import VideoConfig
from omnivad.video.io import iter_frames, video_info


def n_snippets(n_frames: int, frames_per_snippet: int = 16, last_snippet: str = "drop") -> int:
    """Snippets of a video of ``n_frames`` frames: floor (``drop``) or ceil (``pad``)."""
    if last_snippet == "pad":
        return math.ceil(n_frames / frames_per_snippet)
    return n_frames // frames_per_snippet


def rate_ratio(src_fps: float, target_fps: float | None) -> Fraction:
    """Source frames per output frame (1 without resampling)."""
    if target_fps is None:
        return Fraction(1)
    return Fraction(src_fps).limit_denominator(1001) / Fraction(target_fps).limit_denominator(1001)


def source_index(n_src: int, ratio: Fraction) -> np.ndarray:
    """Source frame of each output frame when resampling by ``ratio`` (frame j shows source floor(j·ratio))."""
    n_out = math.ceil(n_src / ratio)
    idx = np.array([math.floor(j * ratio) for j in range(n_out)], dtype=np.int64)
    return idx[idx < n_src]


def frame_gt(n_src: int, intervals: list[tuple[int, int]], end_inclusive: bool = True) -> np.ndarray:
    """uint8 (n_src,) frame labels: 1 inside the abnormal ``(start, end)`` intervals (source frame indices)."""
    gt = np.zeros(n_src, np.uint8)
    for start, end in intervals:
        gt[max(start, 0):max(min(end + int(end_inclusive), n_src), 0)] = 1
    return gt


def resized_hw(h: int, w: int, shorter: int) -> tuple[int, int]:
    """(h, w) with the shorter side ``shorter``, aspect kept, rounded to even sizes."""
    scale = shorter / min(h, w)
    return max(shorter, 2 * round(h * scale / 2)), max(shorter, 2 * round(w * scale / 2))


def crop(frames: np.ndarray, size: int, mode: str = "ten") -> np.ndarray:
    """(T, H, W, 3) → (K, T, size, size, 3): K=1 centre crop, or K=10 (TenCrop order)."""
    _, h, w, _ = frames.shape
    if size > h or size > w:
        raise ValueError(f"crop size {size} larger than the frame {h}x{w}")
    cy, cx = (h - size) // 2, (w - size) // 2
    center = frames[:, cy:cy + size, cx:cx + size]
    if mode == "center":
        return center[None]
    five = [frames[:, :size, :size], frames[:, :size, w - size:], frames[:, h - size:, :size],
            frames[:, h - size:, w - size:], center]
    return np.stack(five + [c[:, :, ::-1] for c in five])


def n_crops(mode: str) -> int:
    return 1 if mode == "center" else 10


@dataclass
class SnippetStream:
    """Iterate ``(index, clip)`` snippets of one video: clip uint8 (K, 16, S, S, 3); bounded memory.

    After iteration, ``n_src`` is the number of decoded source frames, ``n_frames`` the frames after
    resampling, and ``fps`` the source frame rate.
    """

    uri: str
    cfg: VideoConfig
    n_src: int = 0
    n_frames: int = 0
    fps: float = 0.0
    _ratio: Fraction = field(default=Fraction(1), repr=False)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        cfg = self.cfg
        _, self.fps, (h, w) = video_info(self.uri)
        self._ratio = rate_ratio(self.fps, cfg.fps)
        size = resized_hw(h, w, cfg.resize)
        buf: list[np.ndarray] = []
        index = 0
        next_j = 0
        for i, frame in enumerate(iter_frames(self.uri, size=size, min_fraction=cfg.min_decoded_fraction)):
            self.n_src = i + 1
            while math.floor(next_j * self._ratio) == i:  # output frames showing source frame i
                buf.append(frame)
                next_j += 1
                if len(buf) == cfg.frames_per_snippet:
                    yield index, crop(np.stack(buf), cfg.crop_size, cfg.crops)
                    index += 1
                    buf = []
        self.n_frames = next_j
        if buf and cfg.last_snippet == "pad":
            buf += [buf[-1]] * (cfg.frames_per_snippet - len(buf))
            yield index, crop(np.stack(buf), cfg.crop_size, cfg.crops)

    def gt(self, intervals: list[tuple[int, int]]) -> np.ndarray:
        """Frame labels of the output frames (after resampling) from source-frame intervals."""
        src = frame_gt(self.n_src, intervals, self.cfg.gt_end_inclusive)
        return src[source_index(self.n_src, self._ratio)][: self.n_frames]
