"""``omnivad predict``: a model's scores on new videos (a features directory, a corpus split, or a raw video
through the feature extractor's backbone), written as
per-snippet and per-frame ``.npy`` files, one CSV, and the intervals above an operating threshold.

Output layout under ``DIR``::

    DIR/snippets/<video_id>.npy   float32 (T,) snippet scores
    DIR/frames/<video_id>.npy     float32 (16·T,) frame scores (each snippet's score repeated over its 16 frames)
    DIR/predictions.csv           video_id,n_snippets,n_frames,max_score,snippets,frames
    DIR/intervals.csv             video_id,start_frame,end_frame,max_score (with a threshold; end exclusive)
    DIR/threshold.json            the threshold used and where it came from (with a threshold)
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omnivad.errors import CorpusError

if TYPE_CHECKING:
    from omnivad.api import LoadedModel

FRAMES_PER_SNIPPET = 16
_XD_CROP = re.compile(r"^.+__\d+$")


def read_feature_dir(path: str, layout: str = "tkc") -> dict[str, np.ndarray]:
    """``{video_id: (K, T, C) float32}`` of a directory of community feature files, read the way
    ``omnivad corpus import`` reads them (:mod:`omnivad.corpus.importers`): ``NAME__<k>.npy`` crop files of
    shape (T, C) (XD-Violence) grouped into one video, else one file per video of shape (T, C) or (T, K, C)
    (RTFM); ``layout="ktc"`` reads rank-3 files as (K, T, C)."""
    from omnivad.corpus import importers as imp

    if layout not in ("tkc", "ktc"):
        raise ValueError(f"--layout: expected tkc or ktc, got {layout!r}")
    files = sorted(Path(path).glob("*.npy"))
    if not files:
        raise CorpusError(f"{path}: no .npy feature files")
    lines = [imp.ListLine(i + 1, f.name, f) for i, f in enumerate(files)]
    xd = all(_XD_CROP.match(f.stem) for f in files)
    if layout == "ktc" and not xd:
        return {f.stem: _read_ktc(f) for f in files}
    entries = _crop_entries(lines, path) if xd else imp._rtfm_entries(lines, path)
    return {e.video_id: np.ascontiguousarray(imp._load_features(e, path, False).transpose(1, 0, 2)) for e in entries}


def _crop_entries(lines: list[Any], path: str) -> list[Any]:
    """XD-style ``NAME__<k>.npy`` crop files (T, C) grouped per video, crops 0..K-1 without gaps, one shape (the
    importer's checks, without its label-from-name rule: predicted videos need no label)."""
    from omnivad.corpus import importers as imp

    groups: dict[str, dict[int, Any]] = {}
    for ln in lines:
        m = imp._XD_CROP_RE.match(ln.path.stem)
        assert m is not None
        groups.setdefault(m.group("name"), {})[int(m.group("crop"))] = ln
    entries = []
    for name, crops in sorted(groups.items()):
        if sorted(crops) != list(range(len(crops))):
            raise CorpusError(f"{path}: video {name!r} has crop files {sorted(crops)}, expected __0 .. "
                              f"__{len(crops) - 1} without gaps")
        files = [crops[k] for k in sorted(crops)]
        shapes = {imp._read_header(ln.path, path).shape for ln in files}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise CorpusError(f"{path}: video {name!r}: crop files must share one (T, C) shape, got {sorted(shapes)}")
        t, c = next(iter(shapes))
        entries.append(imp._Entry(name, files, n_snippets=t, n_crops=len(files), dim=c))
    return entries


def _read_ktc(f: Path) -> np.ndarray:
    arr = np.load(f, allow_pickle=False)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise CorpusError(f"{f}: features have shape {arr.shape}, expected (K, T, C) or (T, C)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def read_corpus_split(uri: str | None, domain: str | None, split: str = "test") -> dict[str, np.ndarray]:
    """``{video_id: (K, T, C)}`` of one domain's split of a corpus."""
    from omnivad.corpus.format import Corpus

    if uri is None or domain is None:
        raise ValueError("predict from a corpus needs --corpus URI and --domain D")
    corpus = Corpus.open(uri)
    if domain not in corpus.domains:
        raise CorpusError(f"{uri}: --domain {domain!r} is not a domain ({', '.join(corpus.domains)})")
    return {v.video_id: np.ascontiguousarray(v.features.transpose(1, 0, 2)) for v in corpus.videos(domain, split)}


def read_video(path: str, weights: str, backbone: str = "i3d", width: float = 1.0, crops: str = "ten",
               resize: int = 256, crop_size: int = 224) -> dict[str, np.ndarray]:
    """``{stem: (K, T, C)}`` of one raw video, in this process: decoded and cropped exactly as
    ``omnivad extract`` does (:class:`omnivad.video.snippets.SnippetStream`, 16-frame snippets, ten or centre
    crop), each snippet through the backbone read from the local ``weights`` file (nothing is downloaded)."""
    import torch

    from omnivad.config import VideoConfig
    from omnivad.video.backbones import build_backbone
    from omnivad.video.io import VideoError
    from omnivad.video.snippets import SnippetStream

    if not os.path.isfile(path):
        raise CorpusError(f"--video {path}: file not found")
    cfg = VideoConfig(backbone=backbone, width=width, weights=weights, crops=crops,  # type: ignore[arg-type]
                      resize=resize, crop_size=crop_size)
    net = build_backbone(cfg.backbone, cfg.width, cfg.weights)
    feats = []
    try:
        with torch.inference_mode():
            for _, clip in SnippetStream(path, cfg):
                x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 4, 1, 2, 3).float().div_(255.0)
                feats.append(net(x).float().numpy())  # (K, C)
    except VideoError as e:
        raise CorpusError(f"--video {path}: {e}") from e
    if not feats:
        raise CorpusError(f"--video {path}: shorter than one {cfg.frames_per_snippet}-frame snippet")
    return {Path(path).stem: np.ascontiguousarray(np.stack(feats, axis=1), dtype=np.float32)}


def predict_videos(loaded: LoadedModel, videos: dict[str, np.ndarray], domain: str | None) -> dict[str, np.ndarray]:
    """Snippet scores of each video: the ``domain``'s head when the model has one, else the unseen rule."""
    dim = int(loaded.payload["feature_dim"])
    out = {}
    for vid, x in videos.items():
        if x.shape[-1] != dim:
            raise CorpusError(f"video {vid!r}: features of width {x.shape[-1]}, the model {loaded.uri} expects {dim} "
                              "(for --video: the backbone the model's corpus was extracted with)")
        out[vid] = loaded.score(x, domain)
    return out


def resolve_threshold(threshold: str | float | None, loaded: LoadedModel) -> dict[str, Any] | None:
    """``--threshold run``: the run's operating threshold (``threshold.json`` beside the model); a number: that
    value; None: no threshold."""
    if threshold is None:
        return None
    if isinstance(threshold, str) and threshold == "run":
        from omnivad import storage

        uri = os.path.join(os.path.dirname(loaded.uri), "threshold.json")
        fs, p = storage.filesystem(uri)
        if not fs.exists(p):
            raise CorpusError(f"{uri}: no operating threshold stored beside the model (a protocol run writes it); "
                              "give --threshold VALUE")
        found = storage.read_json(fs, p)
        if found.get("value") is None:
            raise CorpusError(f"{uri}: the run found no threshold ({found.get('reason', 'no value')})")
        return {**found, "source": uri}
    try:
        return {"rule": "given", "value": float(threshold), "source": "--threshold"}
    except ValueError as exc:
        raise ValueError(f"--threshold: expected 'run' or a number, got {threshold!r}") from exc


def intervals(frames: np.ndarray, value: float) -> list[tuple[int, int]]:
    """``[(start, end)]`` frame intervals (end exclusive) where ``frames >= value``."""
    above = np.r_[False, frames >= value, False].astype(np.int8)
    edges = np.diff(above)
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist()))


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def write_predictions(out: str, scores: dict[str, np.ndarray], loaded: LoadedModel,
                      threshold: str | float | None = None, domain: str | None = None) -> dict[str, Any]:
    """Write the layout of this module's docstring; returns ``{"videos", "threshold", "intervals"}``."""
    thr = resolve_threshold(threshold, loaded)
    for sub in ("snippets", "frames"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    rows, spans = [], []
    for vid, s in sorted(scores.items()):
        frames = np.repeat(np.asarray(s, dtype=np.float32), FRAMES_PER_SNIPPET)
        Path(out, "snippets", f"{vid}.npy").write_bytes(_npy(s))
        Path(out, "frames", f"{vid}.npy").write_bytes(_npy(frames))
        rows.append({"video_id": vid, "n_snippets": len(s), "n_frames": len(frames), "max_score": float(np.max(s)),
                     "snippets": f"snippets/{vid}.npy", "frames": f"frames/{vid}.npy"})
        if thr is not None:
            spans += [{"video_id": vid, "start_frame": a, "end_frame": b, "max_score": float(frames[a:b].max())}
                      for a, b in intervals(frames, float(thr["value"]))]
    _write_csv(os.path.join(out, "predictions.csv"), rows,
               ["video_id", "n_snippets", "n_frames", "max_score", "snippets", "frames"])
    if thr is not None:
        _write_csv(os.path.join(out, "intervals.csv"), spans, ["video_id", "start_frame", "end_frame", "max_score"])
        Path(out, "threshold.json").write_text(json.dumps({**thr, "domain": domain}, indent=2) + "\n")
    return {"videos": len(rows), "threshold": thr, "intervals": len(spans)}


def _write_csv(path: str, rows: list[dict[str, Any]], fields: list[str]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
