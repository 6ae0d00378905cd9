"""Pose tracks next to a corpus: an AlphaPose JSON importer and the STG-NF windowing (wocc_ws.md §1.3).

Layout: ``<corpus>/poses/domain=<d>/split=<s>/poses.parquet``, one row per (video, person, frame):
``video_id`` (a video of the corpus), ``person`` (track id), ``frame`` (0-based frame index) and
``keypoints`` (17 × (x, y, confidence) float32, COCO-17 order, pixels). The corpus manifest is untouched.

AlphaPose-style JSON (``alphapose-results.json`` with tracking): a list of detections
``{"image_id": "000123.jpg", "keypoints": [x0, y0, c0, ... 51 values], "score": s, "idx": track_id}``;
the frame index is the number in ``image_id``.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from omnivad import storage
from omnivad.corpus.format import Corpus
from omnivad.corpus.names import check_name
from omnivad.errors import CorpusError

POSE_SCHEMA = pa.schema([("video_id", pa.string()), ("person", pa.int32()), ("frame", pa.int32()),
                         ("keypoints", pa.list_(pa.float32()))])
#: COCO-17 → COCO-18 (STG-NF ``keypoints17_to_coco18``); -1 is the neck (mean of both shoulders).
COCO18_FROM_17 = [0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]


def pose_path(root: str, domain: str, split: str) -> str:
    return posixpath.join(root, "poses", f"domain={domain}", f"split={split}", "poses.parquet")


def parse_alphapose(data: Any, source: str = "<json>") -> list[tuple[int, int, np.ndarray]]:
    """(person, frame, keypoints (17, 3)) of every detection in an AlphaPose result list."""
    if not isinstance(data, list):
        raise CorpusError(f"{source}: expected a JSON list of AlphaPose detections")
    out = []
    for i, det in enumerate(data):
        try:
            digits = re.findall(r"\d+", str(det["image_id"]))
            kp = np.asarray(det["keypoints"], dtype=np.float32)
            person = int(det["idx"] if not isinstance(det["idx"], list) else det["idx"][0])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorpusError(f"{source}: detection {i}: expected image_id, keypoints and idx ({exc})") from None
        if not digits or kp.size != 51:
            raise CorpusError(f"{source}: detection {i}: image_id needs a frame number and keypoints 51 values "
                              f"(got {det.get('image_id')!r}, {kp.size} values)")
        out.append((person, int(digits[-1]), kp.reshape(17, 3)))
    return out


def import_poses(corpus_uri: str, domain: str, split: str, files: Mapping[str, str]) -> int:
    """Import one AlphaPose JSON per video (``files``: video_id → path) into the corpus; returns rows."""
    check_name("domain", domain)
    check_name("split", split)
    corpus = Corpus.open(corpus_uri)
    known = {r["video_id"] for r in corpus.index(domain, split)}
    rows: dict[str, list[Any]] = {"video_id": [], "person": [], "frame": [], "keypoints": []}
    for vid, path in sorted(files.items()):
        if vid not in known:
            raise CorpusError(f"{path}: video {vid!r} is not in {domain}/{split} of {corpus_uri}")
        fs, p = storage.filesystem(path)
        with fs.open(p, "rb") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}: not JSON ({exc})") from None
        for person, frame, kp in parse_alphapose(data, path):
            rows["video_id"].append(vid)
            rows["person"].append(person)
            rows["frame"].append(frame)
            rows["keypoints"].append(kp.ravel())
    table = pa.table(rows, schema=POSE_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    storage.write_bytes_atomic(corpus.fs, pose_path(corpus.root, domain, split), sink.getvalue())
    return table.num_rows


def read_poses(corpus_uri: str, domain: str, split: str) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """video_id → person → (frames (F,) sorted, keypoints (F, 17, 3))."""
    check_name("domain", domain)
    check_name("split", split)
    fs, root = storage.filesystem(corpus_uri)
    path = pose_path(root, domain, split)
    if not fs.exists(path):
        raise CorpusError(f"{corpus_uri}: no pose tracks for {domain}/{split} (import them with omnivad.corpus.poses)")
    with fs.open(path, "rb") as fh:
        t = pq.read_table(fh)
    vids = t.column("video_id").to_pylist()
    person = t.column("person").to_numpy()
    frame = t.column("frame").to_numpy()
    kp = np.asarray(t.column("keypoints").combine_chunks().values.to_numpy(zero_copy_only=False)).reshape(-1, 17, 3)
    out: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    keys = np.array([f"{v}\x00{p}" for v, p in zip(vids, person)])
    for key in np.unique(keys):
        sel = np.flatnonzero(keys == key)
        sel = sel[np.argsort(frame[sel], kind="stable")]
        vid, p = key.split("\x00")
        out.setdefault(vid, {})[int(p)] = (frame[sel].astype(np.int64), kp[sel])
    return out


def coco17_to_coco18(kp: np.ndarray) -> np.ndarray:
    """(..., 17, C) → (..., 18, C): add the neck (mean of the shoulders) and reorder as STG-NF does."""
    neck = kp[..., [5], :] * 0.5 + kp[..., [6], :] * 0.5
    full = np.concatenate([kp, neck], axis=-2)
    return full[..., [17 if i == -1 else i for i in COCO18_FROM_17], :]


def normalize_window(xy: np.ndarray, resolution: tuple[float, float]) -> np.ndarray:
    """STG-NF ``normalize_pose`` of (L, V, 2) pixels: /resolution, minus the window mean, / std of y."""
    x = xy / np.asarray(resolution, dtype=np.float32)
    x = x - x.reshape(-1, 2).mean(0)
    return x / max(float(x[..., 1].std()), 1e-6)


def pose_windows(tracks: dict[int, tuple[np.ndarray, np.ndarray]], seg_len: int, stride: int,
                 resolution: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Continuous windows of every track of one video: x (M, 2, seg_len, 18) and start frames (M,)."""
    xs, starts = [], []
    for _person, (frames, kp) in sorted(tracks.items()):
        xy = coco17_to_coco18(kp)[..., :2]
        for i in range(0, len(frames) - seg_len + 1, stride):
            if frames[i + seg_len - 1] - frames[i] != seg_len - 1:
                continue  # a gap in the track: the window is not continuous
            xs.append(normalize_window(xy[i : i + seg_len], resolution).transpose(2, 0, 1))
            starts.append(int(frames[i]))
    if not xs:
        return np.zeros((0, 2, seg_len, 18), np.float32), np.zeros(0, np.int64)
    return np.stack(xs).astype(np.float32), np.asarray(starts, np.int64)
