"""Synthetic raw videos with known abnormal intervals: moving shapes over a per-scene background.

Normal motion: a few small shapes drift slowly left to right and wrap around. Anomalies, inside
``[start, end)`` frames: ``"fast"`` (one shape races across, 8x the normal speed), ``"reverse"``
(a shape moves right to left and vertically), ``"shape"`` (a large bright cross that never appears in
normal footage), ``"object"`` (a foreign checkered object left standing in the scene: easy to predict
once there, so a predictor that copies its inputs misses it). :func:`textured_objects` makes
task-irrelevant donor videos (patterned patches on grey) for zxVAD's pseudo-anomalies. :func:`write_video_set` encodes a small set with a labels CSV and an annotation file
of abnormal intervals, in the formats ``jobs/extract.py`` reads.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from omnivad.video.io import write_video

ANOMALY_KINDS = ("fast", "reverse", "shape", "object")
#: the kinds ``write_video_set`` cycles through by default
SET_KINDS = ("fast", "reverse", "shape")


def _background(scene: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth colour texture fixed by ``scene``: uint8 (H, W, 3)."""
    rng = np.random.default_rng(10_000 + scene)
    h, w = size
    coarse = rng.uniform(40, 140, size=(4, 4, 3))
    ys = np.linspace(0, 3, h)
    xs = np.linspace(0, 3, w)
    y0 = np.clip(ys.astype(int), 0, 2)
    x0 = np.clip(xs.astype(int), 0, 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    c00 = coarse[y0][:, x0]
    c01 = coarse[y0][:, x0 + 1]
    c10 = coarse[y0 + 1][:, x0]
    c11 = coarse[y0 + 1][:, x0 + 1]
    img = (1 - fy) * ((1 - fx) * c00 + fx * c01) + fy * ((1 - fx) * c10 + fx * c11)
    img += rng.normal(0, 6, size=img.shape)  # fine texture
    return np.clip(img, 0, 255).astype(np.uint8)


def _square(img: np.ndarray, cy: float, cx: float, r: int, colour: np.ndarray) -> None:
    h, w, _ = img.shape
    y0, y1 = int(cy) - r, int(cy) + r
    x0, x1 = int(cx) - r, int(cx) + r
    img[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)] = colour


def _cross(img: np.ndarray, cy: float, cx: float, r: int) -> None:
    t = max(r // 3, 1)
    _square_rect(img, cy - t, cy + t, cx - r, cx + r, np.array([255, 30, 30], np.uint8))
    _square_rect(img, cy - r, cy + r, cx - t, cx + t, np.array([255, 30, 30], np.uint8))


def _square_rect(img: np.ndarray, y0: float, y1: float, x0: float, x1: float, colour: np.ndarray) -> None:
    h, w, _ = img.shape
    img[max(int(y0), 0):max(min(int(y1), h), 0), max(int(x0), 0):max(min(int(x1), w), 0)] = colour


def _object_box(seed: int, start: int, h: int, w: int) -> tuple[int, int, int]:
    rng = np.random.default_rng([seed, start, 17])
    r = max(min(h, w) // 8, 2)
    return int(rng.integers(0, h - 2 * r + 1)), int(rng.integers(0, w - 2 * r + 1)), r


def _checker(img: np.ndarray, y0: int, x0: int, r: int) -> None:
    cell = max(r // 2, 1)
    yy, xx = np.mgrid[0 : 2 * r, 0 : 2 * r]
    on = ((yy // cell + xx // cell) % 2 == 1)[..., None]
    img[y0 : y0 + 2 * r, x0 : x0 + 2 * r] = np.where(on, np.array([170, 150, 120], np.uint8), np.array([80, 95, 110], np.uint8))


def textured_objects(n_frames: int, size: tuple[int, int] = (64, 64), seed: int = 0, per_frame: int = 2) -> np.ndarray:
    """Task-irrelevant donor frames uint8 (n_frames, H, W, 3): ``per_frame`` patches of horizontal colour
    bars plus noise on flat grey, a different pattern from every :data:`ANOMALY_KINDS` anomaly."""
    rng = np.random.default_rng([seed, 23])
    h, w = size
    out = np.full((n_frames, h, w, 3), 110, np.uint8)
    for t in range(n_frames):
        for _ in range(per_frame):
            r = int(rng.integers(max(min(h, w) // 10, 1), max(min(h, w) // 5, 2)))
            y, x = (int(v) for v in rng.integers(0, [max(h - 2 * r, 1), max(w - 2 * r, 1)]))
            bars = rng.integers(0, 255, (2 * r, 1, 3))
            out[t, y : y + 2 * r, x : x + 2 * r] = np.clip(bars + rng.normal(0, 30, (2 * r, 2 * r, 3)), 0, 255).astype(np.uint8)
    return out


def moving_shapes(
    n_frames: int,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
    scene: int = 0,
    anomalies: list[tuple[int, int, str]] | tuple = (),
    n_shapes: int = 3,
) -> np.ndarray:
    """Frames uint8 (n_frames, H, W, 3) of one synthetic scene; ``anomalies`` = ``[(start, end, kind)]``
    with ``end`` exclusive and ``kind`` in :data:`ANOMALY_KINDS`."""
    for start, end, kind in anomalies:
        if kind not in ANOMALY_KINDS:
            raise ValueError(f"anomaly kind {kind!r} not in {ANOMALY_KINDS}")
        if not 0 <= start < end <= n_frames:
            raise ValueError(f"anomaly interval [{start}, {end}) outside 0..{n_frames}")
    rng = np.random.default_rng(seed)
    h, w = size
    bg = _background(scene, size)
    r = max(min(h, w) // 16, 1)
    ys = rng.uniform(r, h - r, n_shapes)
    xs = rng.uniform(0, w, n_shapes)
    speed = rng.uniform(0.4, 0.8, n_shapes) * w / 64  # pixels per frame
    colours = rng.integers(150, 230, size=(n_shapes, 3)).astype(np.uint8)
    colours[:, 0] //= 2  # normal shapes are never the anomaly's saturated red
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    for t in range(n_frames):
        img = bg.copy()
        active = [(s, e, k) for s, e, k in anomalies if s <= t < e]
        for i in range(n_shapes):
            x = (xs[i] + speed[i] * t) % (w + 2 * r) - r
            _square(img, ys[i], x, r, colours[i])
        for s, _, kind in active:
            dt = t - s
            if kind == "fast":
                x = (8 * w / 64 * dt) % (w + 2 * r) - r
                _square(img, h / 2, x, r, np.array([230, 230, 230], np.uint8))
            elif kind == "reverse":
                x = w - (1.5 * w / 64 * dt) % (w + 2 * r) + r
                y = h / 2 + (h / 3) * np.sin(dt / 4)
                _square(img, y, x, r, np.array([230, 230, 230], np.uint8))
            elif kind == "object":  # a foreign checkered object standing still, placed by the seed
                _checker(img, *_object_box(seed, s, h, w))
            else:  # "shape": a large red cross wandering slowly
                _cross(img, h / 2 + (h / 8) * np.sin(dt / 6), w / 2 + (w / 8) * np.cos(dt / 6), max(h, w) // 5)
        frames[t] = img
    return frames


def write_video_set(
    out_dir: str,
    n_normal: int = 4,
    n_abnormal: int = 4,
    n_frames: int | tuple[int, int] = (40, 80),
    size: tuple[int, int] = (64, 64),
    fps: float = 25.0,
    scene: int = 0,
    kinds: tuple[str, ...] = SET_KINDS,
    seed: int = 0,
    ext: str = ".mp4",
    prefix: str = "",
) -> dict[str, list[tuple[int, int]]]:
    """Write ``n_normal + n_abnormal`` videos under ``out_dir`` plus ``labels.csv`` and ``annotations.txt``.

    ``labels.csv``: header ``video,label,category`` (label 0 normal / 1 abnormal). ``annotations.txt``:
    one line per abnormal video, ``name category start end [start end ...]`` with 0-based frame indices
    and inclusive ends (the UCF-Crime ``Temporal_Anomaly_Annotation`` layout). Returns
    ``{video name: [(start, end_exclusive), ...]}`` (empty for normal videos). Names are
    ``<prefix>normal_000.mp4``, ``<prefix>abnormal_004.mp4``... (video ids must be unique per domain
    across splits: give train and test sets different prefixes).
    """
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    lo, hi = (n_frames, n_frames) if isinstance(n_frames, int) else n_frames
    truth: dict[str, list[tuple[int, int]]] = {}
    rows: list[tuple[str, int, str]] = []
    ann: list[str] = []
    for i in range(n_normal + n_abnormal):
        abnormal = i >= n_normal
        n = int(rng.integers(lo, hi + 1))
        name = f"{prefix}{'abnormal' if abnormal else 'normal'}_{i:03d}{ext}"
        intervals: list[tuple[int, int, str]] = []
        if abnormal:
            kind = kinds[(i - n_normal) % len(kinds)]
            length = int(rng.integers(max(n // 4, 1), max(n // 2, 2) + 1))
            start = int(rng.integers(0, n - length + 1))
            intervals = [(start, start + length, kind)]
        frames = moving_shapes(n, size=size, seed=seed * 1000 + i, scene=scene, anomalies=intervals)
        write_video(os.path.join(out_dir, name), frames, fps=fps)
        truth[name] = [(s, e) for s, e, _ in intervals]
        category = intervals[0][2] if intervals else "normal"
        rows.append((name, int(abnormal), category))
        if intervals:
            ann.append(" ".join([name, category] + [f"{s} {e - 1}" for s, e, _ in intervals]))
    with open(os.path.join(out_dir, "labels.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "label", "category"])
        writer.writerows(rows)
    with open(os.path.join(out_dir, "annotations.txt"), "w") as f:
        f.write("\n".join(ann) + ("\n" if ann else ""))
    return truth
