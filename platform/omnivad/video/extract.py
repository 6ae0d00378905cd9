"""Distributed snippet-feature extraction: video files → Ray Data → backbone actors → corpus format.

Pipeline (one streaming Ray Data pass, memory bounded by a few decoded blocks per task/actor)::

    from_items(video URIs) ──map_batches(decode_videos, tasks)──▶ snippet blocks of chunk_snippets
        ──map_batches(SnippetExtractor, actor pool, GPU when present)──▶ (T-index, crops, C) features
        ──driver: reassemble each video, frame gt from the annotation file──▶ CorpusWriter

Each decoded row is one snippet: ``uri, index, clip (crops, 16, S, S, 3) uint8, last, n_src, n_frames,
error``. The last snippet of a video carries ``last=True`` and the frame counts, so the driver knows
when a video is complete whatever the arrival order. A video that cannot be decoded (or is too short
for one snippet) yields one status row (``index=-1``, ``error``), so it is always reported by name:
``video.on_error=fail`` stops the job (nothing is committed), ``skip`` leaves it out and lists it on
stderr and in the report JSON.
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnivad import storage
from omnivad.config import Config, VideoConfig
from omnivad.corpus.format import CorpusWriter, Video
from omnivad.corpus.names import check_name, check_video_id
from omnivad.video.io import VideoError, list_videos
from omnivad.video.snippets import SnippetStream, frame_gt, n_crops, source_index, rate_ratio


@dataclass
class VideoItem:
    """One video to extract: where it is, its label and its abnormal intervals (source frames)."""

    uri: str
    video_id: str
    label: int
    domain: str
    split: str
    category: str = ""
    intervals: list[tuple[int, int]] | None = None


@dataclass
class ExtractReport:
    corpus: str
    domain: str
    split: str
    backbone: str
    feature_dim: int
    n_crops: int
    extracted: list[dict[str, Any]] = field(default_factory=list)  # {video_id, n_snippets, n_frames}
    skipped: list[dict[str, str]] = field(default_factory=list)  # {video, error}
    seconds: float = 0.0
    status: str = "ok"
    error: str = ""

    @property
    def snippets(self) -> int:
        return sum(v["n_snippets"] for v in self.extracted)


# ------------------------------------------------------------------------------------------------ inputs
def _name(uri: str) -> str:
    return posixpath.basename(uri.rstrip("/"))


def _stem(uri: str) -> str:
    return os.path.splitext(_name(uri))[0]


def read_labels(path: str) -> dict[str, dict[str, Any]]:
    """``labels.csv`` with a header: ``video`` (file name or stem), ``label`` (0/1 or normal/abnormal),
    optional ``category``, ``split`` and ``domain`` (one file can then describe a whole dataset).
    Returns ``{video: {label, category, split, domain}}`` (empty strings where a column is absent)."""
    fs, p = storage.filesystem(path)
    if not fs.exists(p):
        raise VideoError(f"{path}: labels file not found")
    with fs.open(p, "r") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"video", "label"} <= set(reader.fieldnames):
            raise VideoError(f"{path}: expected a header with columns 'video' and 'label', got {reader.fieldnames}")
        out: dict[str, dict[str, Any]] = {}
        for line, row in enumerate(reader, start=2):
            raw = (row["label"] or "").strip().lower()
            if raw in ("0", "normal"):
                label = 0
            elif raw in ("1", "abnormal", "anomaly", "anomalous"):
                label = 1
            else:
                raise VideoError(f"{path}:{line}: label {row['label']!r} of {row['video']!r}: expected 0/1 or normal/abnormal")
            out[row["video"].strip()] = {"label": label, **{k: (row.get(k) or "").strip() for k in ("category", "split", "domain")}}
    return out


def read_annotations(path: str) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """Abnormal intervals, one video per line: ``name [category] start end [start end ...]`` (whitespace
    or commas; ``-1`` pairs ignored; UCF-Crime's ``Temporal_Anomaly_Annotation.txt`` reads as is).
    Frame indices are 0-based source frames; ends are inclusive unless ``video.gt_end_inclusive=false``."""
    fs, p = storage.filesystem(path)
    if not fs.exists(p):
        raise VideoError(f"{path}: annotation file not found")
    out: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    with fs.open(p, "r") as f:
        for line_no, line in enumerate(f, start=1):
            tokens = line.replace(",", " ").split()
            if not tokens or tokens[0].startswith("#"):
                continue
            name, rest = tokens[0], tokens[1:]
            category = ""
            if rest and not rest[0].lstrip("-").isdigit():
                category, rest = rest[0], rest[1:]
            try:
                nums = [int(t) for t in rest]
            except ValueError as e:
                raise VideoError(f"{path}:{line_no}: expected integer frame indices after the name/category ({e})") from e
            if len(nums) % 2:
                raise VideoError(f"{path}:{line_no}: odd number of frame indices for {name!r}")
            pairs = [(s, e) for s, e in zip(nums[::2], nums[1::2]) if s >= 0 and e >= 0]
            for s, e in pairs:
                if e < s:
                    raise VideoError(f"{path}:{line_no}: interval ({s}, {e}) of {name!r} ends before it starts")
            out[name] = (category, pairs)
    return out


def _lookup(table: dict[str, Any], uri: str) -> Any:
    for key in (_name(uri), _stem(uri)):
        if key in table:
            return table[key]
    return None


def plan_videos(
    videos: str, labels: str | None = None, annotations: str | None = None, split: str | None = "test",
    domain: str | None = "default", id_prefix: str = "",
) -> list[VideoItem]:
    """The videos to extract with their labels and intervals; every inconsistency is an error naming the video.

    Without a labels file a video is abnormal exactly when the annotation file gives it intervals.
    ``split``/``domain`` apply to videos whose labels row has no ``split``/``domain`` column value.
    Abnormal test videos need intervals (the frame-level ground truth); normal videos get all-zero gt.
    """
    if id_prefix:
        check_name("--id-prefix", id_prefix)
    if domain:
        check_name("--domain", domain)
    uris = list_videos(videos)
    if not uris:
        raise VideoError(f"{videos}: no video files found")
    stems: dict[str, str] = {}
    for u in uris:
        if _stem(u) in stems:
            raise VideoError(f"{u}: video id {_stem(u)!r} is also used by {stems[_stem(u)]}")
        stems[_stem(u)] = u
    label_table = read_labels(labels) if labels else None
    ann_table = read_annotations(annotations) if annotations else {}
    if label_table is not None:
        known = {_name(u) for u in uris} | set(stems)
        absent = sorted(k for k in label_table if k not in known)
        if absent:
            raise VideoError(f"{labels}: lists {len(absent)} video(s) not found under {videos}: {', '.join(absent[:5])}")
    items = []
    for u in uris:
        ann = _lookup(ann_table, u)
        if label_table is not None:
            entry = _lookup(label_table, u)
            if entry is None:
                raise VideoError(f"{u}: no label in {labels}")
            label, category = entry["label"], entry["category"]
            v_split, v_domain = entry["split"] or split, entry["domain"] or domain
        else:
            label, category = (1, ann[0]) if ann and ann[1] else (0, "")
            v_split, v_domain = split, domain
        missing = "split" if not v_split else "domain" if not v_domain else None
        if missing:
            raise VideoError(f"{u}: no {missing} (give --{missing}, or a '{missing}' column in {labels or 'a labels CSV'})")
        if v_split not in ("train", "test", "validation"):
            raise VideoError(f"{u}: split {v_split!r}: expected train, test or validation")
        where = f"{u} ({labels})" if label_table is not None else u
        check_name("domain", v_domain, where)  # a labels CSV's domain becomes a directory of the corpus
        check_video_id(id_prefix + _stem(u), where)
        intervals: list[tuple[int, int]] | None = ann[1] if ann else None
        if label == 0:
            if intervals:
                raise VideoError(f"{u}: labelled normal but {annotations} gives it abnormal intervals")
            intervals = []
        elif intervals is None and v_split == "test":
            raise VideoError(f"{u}: abnormal test video without intervals in {annotations or '--annotations'}")
        category = "Normal" if label == 0 else (category or (ann[0] if ann else ""))
        items.append(VideoItem(uri=u, video_id=id_prefix + _stem(u), label=label, domain=v_domain, split=v_split,
                               category=category, intervals=intervals))
    return items


# ------------------------------------------------------------------------------------------------ stages
def _rows(
    uri: str, snippets: list[tuple[int, np.ndarray]], last: bool, n_src: int = -1, n_frames: int = -1, fps: float = 0.0
) -> dict[str, np.ndarray]:
    n = len(snippets)
    lasts = np.zeros(n, bool)
    lasts[-1] = last
    return {
        "uri": np.array([uri] * n, dtype=object),
        "index": np.array([i for i, _ in snippets], np.int64),
        "clip": np.stack([c for _, c in snippets]),
        "last": lasts,
        "n_src": np.full(n, n_src, np.int64),
        "n_frames": np.full(n, n_frames, np.int64),
        "fps": np.full(n, fps, np.float64),
        "error": np.array([""] * n, dtype=object),
    }


def _status(uri: str, error: str, cfg: VideoConfig) -> dict[str, np.ndarray]:
    """The one row of a video that produced no snippets: its error (a small zero clip keeps the schema)."""
    s = cfg.crop_size
    row = _rows(uri, [(-1, np.zeros((n_crops(cfg.crops), cfg.frames_per_snippet, s, s, 3), np.uint8))], last=True)
    row["error"] = np.array([error], dtype=object)
    return row


def decode_videos(batch: dict[str, np.ndarray], cfg: VideoConfig) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data generator UDF: the snippets of each video in the batch, ``chunk_snippets`` rows at a time."""
    for uri in batch["uri"]:
        uri = str(uri)
        stream = SnippetStream(uri, cfg)
        pending: list[tuple[int, np.ndarray]] = []
        try:
            for snippet in stream:
                pending.append(snippet)
                if len(pending) > cfg.chunk_snippets:  # keep one back: the last one carries the counts
                    yield _rows(uri, pending[: cfg.chunk_snippets], last=False)
                    pending = pending[cfg.chunk_snippets:]
        except VideoError as e:
            yield _status(uri, str(e), cfg)
            continue
        if not pending:
            yield _status(uri, f"{uri}: too short: {stream.n_frames} frames, fewer than one "
                               f"{cfg.frames_per_snippet}-frame snippet (video.last_snippet=pad keeps it)", cfg)
            continue
        yield _rows(uri, pending, last=True, n_src=stream.n_src, n_frames=stream.n_frames, fps=stream.fps)


class SnippetExtractor:
    """Ray Data actor: holds the backbone once; clips (B, K, 16, S, S, 3) uint8 → features (B, K, C)."""

    def __init__(self, cfg: VideoConfig, use_gpu: bool) -> None:
        import torch

        from omnivad.video.backbones import build_backbone

        torch.set_num_threads(max(1, int(cfg.cpus_per_actor)))
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        self.model = build_backbone(cfg.backbone, cfg.width, cfg.weights, cfg.random_weights, cfg.seed).to(self.device)
        self.dim = int(self.model.feature_dim)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        clip = batch["clip"]
        b, k = clip.shape[:2]
        feats = np.zeros((b, k, self.dim), np.float32)
        valid = np.asarray(batch["index"]) >= 0
        if valid.any():
            x = torch.from_numpy(np.ascontiguousarray(clip[valid])).to(self.device)
            x = x.flatten(0, 1).permute(0, 4, 1, 2, 3).float().div_(255.0)  # (b·K, 3, 16, S, S)
            with torch.inference_mode():
                f = self.model(x).float().cpu().numpy()
            feats[valid] = f.reshape(int(valid.sum()), k, self.dim)
        out = {key: batch[key] for key in ("uri", "index", "last", "n_src", "n_frames", "fps", "error")}
        out["features"] = feats
        return out


def feature_dim(cfg: VideoConfig) -> int:
    """The backbone's feature size, from the architecture (no weights needed)."""
    from omnivad.video.backbones import build_backbone

    return int(build_backbone(cfg.backbone, cfg.width, random_weights=True).feature_dim)


def snippet_dataset(uris: list[str], cfg: VideoConfig, use_gpu: bool, extract: bool = True) -> Any:
    """The Ray Dataset of decoded snippets (``extract=False``) or of their features."""
    import ray.data

    ds = ray.data.from_items([{"uri": u} for u in uris], override_num_blocks=max(1, len(uris)))
    decode_compute = ray.data.TaskPoolStrategy(size=cfg.decoders) if cfg.decoders else None
    # CPU only: decode with the actors' resources, so Ray fuses decoding into the actors (no clip transfer,
    # and no decode task left waiting for CPUs the actors hold). GPU actors: decoding in 1-CPU tasks.
    ds = ds.map_batches(decode_videos, fn_kwargs={"cfg": cfg}, batch_size=1, compute=decode_compute,
                        num_cpus=1 if use_gpu or not extract else cfg.cpus_per_actor)
    if not extract:
        return ds
    return ds.map_batches(
        SnippetExtractor,
        fn_constructor_kwargs={"cfg": cfg, "use_gpu": use_gpu},
        batch_size=cfg.batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.actors),
        num_cpus=cfg.cpus_per_actor,
        num_gpus=1 if use_gpu else 0,
    )


def check_resources(cfg: VideoConfig, use_gpu: bool) -> None:
    """Fail early (instead of waiting forever) when the cluster cannot host the actor pool and a decoder."""
    import ray

    res = ray.cluster_resources()
    cpus_needed = cfg.actors * cfg.cpus_per_actor + (1 if use_gpu else 0)
    if res.get("CPU", 0) < cpus_needed:
        raise VideoError(f"video.actors x video.cpus_per_actor ({cfg.actors} x {cfg.cpus_per_actor:g})"
                         f"{' + 1 decoder' if use_gpu else ''} needs {cpus_needed:g} CPUs, the cluster has {res.get('CPU', 0):g}")
    if use_gpu and res.get("GPU", 0) < cfg.actors:
        raise VideoError(f"video.actors ({cfg.actors}) GPU actors, the cluster has {res.get('GPU', 0):g} GPUs")


# ------------------------------------------------------------------------------------------------ driver
class _Pending:
    """Snippet features of one video as they arrive, in any order."""

    def __init__(self) -> None:
        self.features: dict[int, np.ndarray] = {}
        self.total: int | None = None
        self.n_src = self.n_frames = -1
        self.fps = 0.0

    def add(self, index: int, feats: np.ndarray, last: bool, n_src: int, n_frames: int, fps: float) -> None:
        self.features[index] = feats
        if last:
            self.total, self.n_src, self.n_frames, self.fps = index + 1, n_src, n_frames, fps

    @property
    def complete(self) -> bool:
        return self.total is not None and len(self.features) == self.total


def extract_corpus(
    cfg: Config, videos: str, out: str, domain: str | None = None, split: str | None = None,
    labels: str | None = None, annotations: str | None = None, report: str | None = None, progress: bool = True,
    id_prefix: str = "",
) -> ExtractReport:
    """Extract the snippet features of every video under ``videos`` into the corpus at ``out``.

    ``domain``/``split`` name the videos' domain and split, unless the labels file has those columns.
    Returns the report (also written as JSON to ``report``, default ``<out>/reports/extract-<domain>-<split>.json``).
    """
    import ray

    from omnivad.protocols.runner import ensure_ray

    v = cfg.video
    t0 = time.perf_counter()
    items = {it.uri: it for it in plan_videos(videos, labels, annotations, split, domain, id_prefix)}
    domain = ",".join(sorted({it.domain for it in items.values()}))
    split = ",".join(sorted({it.split for it in items.values()}))
    dim = feature_dim(v)
    ensure_ray(cfg)
    use_gpu = v.use_gpu if v.use_gpu is not None else ray.cluster_resources().get("GPU", 0) > 0
    check_resources(v, use_gpu)
    rep = ExtractReport(corpus=out, domain=domain, split=split, backbone=v.backbone, feature_dim=dim, n_crops=n_crops(v.crops))
    report_uri = report or storage.join(out, "reports", f"extract-{domain.replace(',', '+')}-{split.replace(',', '+')}.json")
    say = _Say(progress)
    say(f"{len(items)} videos → {out} ({domain}/{split}), backbone {v.backbone} ({dim}-d, {rep.n_crops} crop(s)), "
        f"{v.actors} actor(s){' on GPU' if use_gpu else ''}")
    ds = snippet_dataset(list(items), v, use_gpu)
    try:
        with CorpusWriter(out, feature_dim=dim, backbone=_backbone_tag(v), frames_per_snippet=v.frames_per_snippet,
                          source_format="video", part_bytes=v.part_bytes) as writer:
            _check_ids_free(items, writer, out)
            done, failed = _write_batches(ds, items, v, rep, writer, say)
            _check_all_back(items, done, failed, rep, videos)
    except BaseException as exc:
        rep.status, rep.error = "failed", str(exc)
        rep.seconds = time.perf_counter() - t0
        _write_report(report_uri, rep)
        raise
    rep.seconds = time.perf_counter() - t0
    _write_report(report_uri, rep)
    say(f"done: {len(rep.extracted)} videos, {rep.snippets} snippets in {rep.seconds:.1f}s "
        f"({rep.snippets / max(rep.seconds, 1e-9):.1f} snippets/s); skipped {len(rep.skipped)}; report {report_uri}")
    return rep


class _Say:
    """``[extract] …`` progress lines on stderr, or nothing when ``enabled`` is false."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[extract] {msg}", file=sys.stderr, flush=True)


def _check_ids_free(items: dict[str, VideoItem], writer: CorpusWriter, out: str) -> None:
    """Before any decoding: a rerun into the same corpus fails at once."""
    for it in items.values():
        if it.video_id in writer.existing_ids(it.domain):
            raise VideoError(f"{it.uri}: video id {it.video_id!r} is already in domain {it.domain!r} of {out} "
                             f"(videos of another split with the same names need --id-prefix)")


def _write_batches(ds: Any, items: dict[str, VideoItem], v: VideoConfig, rep: ExtractReport,
                   writer: CorpusWriter, say: _Say) -> tuple[set[str], set[str]]:
    """Gather the snippet rows of ``ds`` per video; write each video once all its snippets are in.

    Returns the URIs written and the URIs skipped (``video.on_error=skip``)."""
    pending: dict[str, _Pending] = {}
    failed: set[str] = set()
    done: set[str] = set()
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for i, uri in enumerate(batch["uri"]):
            uri = str(uri)
            if uri in failed:
                continue
            if batch["error"][i]:
                _fail(str(batch["error"][i]), uri, v, rep, failed, pending)
                continue
            p = pending.setdefault(uri, _Pending())
            p.add(int(batch["index"][i]), np.array(batch["features"][i]), bool(batch["last"][i]),
                  int(batch["n_src"][i]), int(batch["n_frames"][i]), float(batch["fps"][i]))
            if p.complete:
                _write_video(writer, items[uri], pending.pop(uri), v, rep)
                done.add(uri)
                say(f"{len(rep.extracted) + len(rep.skipped)}/{len(items)} {items[uri].video_id}: "
                    f"{p.total} snippets, {p.n_frames} frames")
    return done, failed


def _write_video(writer: CorpusWriter, item: VideoItem, p: _Pending, v: VideoConfig, rep: ExtractReport) -> None:
    writer.add(_video(item, p, v))
    rep.extracted.append({"video_id": item.video_id, "domain": item.domain,
                          "split": item.split, "n_snippets": p.total, "n_frames": p.n_frames})


def _check_all_back(items: dict[str, VideoItem], done: set[str], failed: set[str], rep: ExtractReport,
                    videos: str) -> None:
    lost = sorted(set(items) - failed - done)
    if lost:  # cannot happen unless a stage dropped rows; never let it pass silently
        raise VideoError(f"{lost[0]}: no features came back for {len(lost)} video(s)")
    if not rep.extracted:
        raise VideoError(f"{videos}: no video could be extracted ({len(rep.skipped)} failed)")


def _fail(error: str, uri: str, v: VideoConfig, rep: ExtractReport, failed: set[str], pending: dict[str, _Pending]) -> None:
    if v.on_error == "fail":
        raise VideoError(f"{error} (video.on_error=fail; --on-error skip skips and reports it)")
    failed.add(uri)
    pending.pop(uri, None)
    rep.skipped.append({"video": uri, "error": error})
    print(f"[extract] skipped {uri}: {error}", file=sys.stderr, flush=True)


def _video(item: VideoItem, p: _Pending, v: VideoConfig) -> Video:
    feats = np.stack([p.features[i] for i in range(p.total or 0)]).astype(np.float32)
    gt = None
    if item.intervals is not None:
        src = frame_gt(p.n_src, item.intervals, v.gt_end_inclusive)
        gt = src[source_index(p.n_src, rate_ratio(p.fps, v.fps))][: p.n_frames]
    categories = [item.category] if item.category else []
    return Video(video_id=item.video_id, domain=item.domain, split=item.split, label=item.label, features=feats,
                 categories=categories, gt=gt, source=item.domain)


def _backbone_tag(v: VideoConfig) -> str:
    tag = v.backbone if v.width == 1.0 else f"{v.backbone}-w{v.width:g}"
    weights = f"random{v.seed}" if v.random_weights else os.path.basename(v.weights or "")
    return f"{tag}-{weights}-{v.crops}crop"


def _write_report(uri: str, rep: ExtractReport) -> None:
    fs, path = storage.filesystem(uri)
    data = {**rep.__dict__, "snippets": rep.snippets}
    storage.write_json_atomic(fs, path, json.loads(json.dumps(data)))
