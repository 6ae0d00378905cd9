"""The omnivad corpus: Parquet partitioned by domain and split, plus a JSON manifest.

Layout under a corpus root (a local directory or an ``s3://`` prefix)::

    manifest.json
    videos/domain=<name>/split=<train|test|...>/part-<sha256[:16]>.parquet

One row per video:

=============  =====================  ==================================================
column         type                   meaning
=============  =====================  ==================================================
video_id       string                 file stem (unique within a domain)
domain         string                 domain name
split          string                 ``train`` / ``test`` (``validation`` where a dataset ships one)
label          int8                   video label: 0 normal, 1 abnormal
category       string                 primary category ("" when unknown, "Normal" for normal videos)
categories     list<string>           every category of the video (XD videos can have several)
n_snippets     int32                  T, 16-frame snippets
n_crops        int16                  crops kept (1 when averaged)
features       large_list<float32>    T × crops × C values, row-major
n_frames       int32                  frame count of the ground truth (16·T for imported features)
gt             list<uint8> or null    frame-level ground truth (test videos; null when unknown)
fold           int16                  -1 unless a builder assigns one
source         string                 dataset the video came from (differs from domain for merged sets)
side_flow      large_list<float32>    optional: T motion intensities (optical-flow magnitude per snippet)
side_objects   large_list<float32>    optional: T × W object-class scores per snippet (detector, W classes)
=============  =====================  ==================================================

Side columns (``side_<name>``, :data:`SIDE_SIGNALS`) exist only in parts whose videos carry them; within a
(domain, split) every video has the same side signals, of the same widths, recorded in the manifest
(``domains.<d>.splits.<s>.side``: name → width, 1 for ``flow``). A corpus without them is byte-identical to
one written before side signals existed.

The manifest lists every part file with its row count and content hash. It is the commit point:
readers only read parts it names, and it is written last, atomically, so a failed import leaves the
corpus as it was (parts written by the failed import are deleted before the error propagates).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, ValidationError, field_validator

from omnivad import storage
from omnivad.corpus.lock import CorpusLock
from omnivad.corpus.names import check_name, check_video_id
from omnivad.errors import CorpusError

FORMAT_NAME = "omnivad-corpus"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FRAMES_PER_SNIPPET = 16

SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("domain", pa.string()),
        ("split", pa.string()),
        ("label", pa.int8()),
        ("category", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("n_snippets", pa.int32()),
        ("n_crops", pa.int16()),
        ("features", pa.large_list(pa.float32())),
        ("n_frames", pa.int32()),
        ("gt", pa.list_(pa.uint8())),
        ("fold", pa.int16()),
        ("source", pa.string()),
    ]
)
_DICT_COLUMNS = ["video_id", "domain", "split", "category", "source"]
INDEX_COLUMNS = [f.name for f in SCHEMA if f.name not in ("features", "gt")]
#: Optional per-snippet side signals: name → dimensions of one video's array ((T,) or (T, W)).
SIDE_SIGNALS = {"flow": 1, "objects": 2}
SIDE_PREFIX = "side_"


def side_column(name: str) -> str:
    return SIDE_PREFIX + name


def check_side(video_id: str, name: str, arr: np.ndarray, n_snippets: int) -> np.ndarray:
    """A side signal of a video as float32, validated: known name, shape (T,) / (T, W), finite values."""
    where = f"video {video_id!r}: side signal {name!r}"
    if name not in SIDE_SIGNALS:
        raise CorpusError(f"{where}: unknown (known: {', '.join(SIDE_SIGNALS)})")
    a = np.asarray(arr)
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise CorpusError(f"{where}: expected real numbers, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    ndim = SIDE_SIGNALS[name]
    shape = "(T,)" if ndim == 1 else "(T, W)"
    if a.ndim != ndim or a.shape[0] != n_snippets or (ndim == 2 and a.shape[1] < 1):
        raise CorpusError(f"{where}: shape {tuple(a.shape)}, expected {shape} with T = {n_snippets} snippets")
    if not np.isfinite(a).all():
        raise CorpusError(f"{where}: contains NaN or infinite values")
    return a


def side_width(arr: np.ndarray) -> int:
    return 1 if arr.ndim == 1 else int(arr.shape[1])


@dataclass
class Video:
    """One video of a corpus. ``features`` is ``(T, crops, C)`` float32."""

    video_id: str
    domain: str
    split: str
    label: int
    features: np.ndarray
    categories: list[str] = field(default_factory=list)
    gt: np.ndarray | None = None
    fold: int = -1
    source: str = ""
    side: dict[str, np.ndarray] = field(default_factory=dict)  # name → (T,) or (T, W), see SIDE_SIGNALS

    @property
    def n_snippets(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_crops(self) -> int:
        return int(self.features.shape[1])

    @property
    def category(self) -> str:
        if self.categories:
            return self.categories[0]
        return "Normal" if self.label == 0 else ""

    @property
    def n_frames(self) -> int:
        return int(len(self.gt)) if self.gt is not None else FRAMES_PER_SNIPPET * self.n_snippets


class SplitStats(BaseModel):
    videos: int = 0
    normal: int = 0
    abnormal: int = 0
    snippets: int = 0
    categories: dict[str, int] = Field(default_factory=dict)
    parts: list[dict[str, Any]] = Field(default_factory=list)  # {path, rows, sha256}
    side: dict[str, int] = Field(default_factory=dict)  # side signal → width (every video of the split has it)

    @field_validator("parts")
    @classmethod
    def _confined(cls, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for part in parts:
            confined_part_path(part.get("path"))
            sha = part.get("sha256")
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise ValueError(f"part {part.get('path')!r}: sha256 {sha!r} is not 64 hex digits")
        return parts


_PART_RE = re.compile(r"^videos/domain=[^/]+/split=[^/]+/part-[0-9a-f]+\.parquet$")


def confined_part_path(rel: object) -> str:
    """``rel`` if it is a part path inside the corpus root (``videos/domain=D/split=S/part-H.parquet``).

    Absolute paths, ``..``, ``.``, empty components, backslashes and URIs are rejected, so a crafted manifest
    can make no reader read, and no writer delete, a file outside its corpus.
    """
    ok = isinstance(rel, str) and bool(_PART_RE.match(rel)) and "\\" not in rel and "://" not in rel
    if ok:
        comps = rel.split("/")  # type: ignore[union-attr]
        ok = all(c not in ("", ".", "..") for c in comps) and all(
            c.split("=", 1)[1] not in ("", ".", "..") for c in comps[1:3])
    if not ok:
        raise ValueError(f"part path {rel!r} is not inside the corpus (expected videos/domain=D/split=S/part-HASH.parquet, "
                         "relative, without '..')")
    return rel  # type: ignore[return-value]


class DomainEntry(BaseModel):
    n_crops: int | None = None
    source_format: str = ""
    metric: Literal["auc", "ap"] = Field(
        default="auc", description="headline metric in tables: ap for XD-style domains (XD-Violence reports AP)")
    splits: dict[str, SplitStats] = Field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        cats: set[str] = set()
        for st in self.splits.values():
            cats.update(c for c in st.categories if c not in ("Normal", ""))
        return sorted(cats)


class Manifest(BaseModel):
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    feature_dim: int
    backbone: str = "unknown"
    frames_per_snippet: int = FRAMES_PER_SNIPPET
    domains: dict[str, DomainEntry] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        """Content hash of the corpus: every part's sha256, in a fixed order."""
        h = hashlib.sha256()
        h.update(f"{self.feature_dim}|{self.backbone}|{self.frames_per_snippet}".encode())
        for d in sorted(self.domains):
            for s in sorted(self.domains[d].splits):
                for part in sorted(p["sha256"] for p in self.domains[d].splits[s].parts):
                    h.update(f"{d}/{s}/{part}".encode())
        return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# Reading


class Corpus:
    """A corpus opened from its root URI. Reads only the parts the manifest names."""

    def __init__(self, uri: str, manifest: Manifest, *, verify: bool = True) -> None:
        self.uri = uri
        self.manifest = manifest
        self.verify = verify
        self.fs, self.root = storage.filesystem(uri)

    @classmethod
    def open(cls, uri: str, *, verify: bool = True) -> Corpus:
        """Open the corpus at ``uri``; with ``verify`` (``corpus.verify``) every part read is checked against the
        sha256 the manifest records."""
        fs, root = storage.filesystem(uri)
        path = posixpath.join(root, MANIFEST)
        if not fs.exists(path):
            raise CorpusError(f"{uri}: not an omnivad corpus ({MANIFEST} not found)")
        raw = storage.read_json(fs, path)
        if raw.get("format") != FORMAT_NAME:
            raise CorpusError(f"{path}: field 'format' is {raw.get('format')!r}, expected {FORMAT_NAME!r}")
        try:
            manifest = Manifest.model_validate(raw)
        except ValidationError as exc:  # one line per error, each naming the field
            errs = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
            raise CorpusError(f"{path}: invalid manifest: {errs}") from None
        return cls(uri, manifest, verify=verify)

    @staticmethod
    def exists(uri: str) -> bool:
        fs, root = storage.filesystem(uri)
        return fs.exists(posixpath.join(root, MANIFEST))

    @property
    def domains(self) -> list[str]:
        return list(self.manifest.domains)

    @property
    def feature_dim(self) -> int:
        return self.manifest.feature_dim

    def fingerprint(self) -> str:
        return self.manifest.fingerprint()

    def splits(self, domain: str) -> list[str]:
        return list(self._domain(domain).splits)

    def _domain(self, domain: str) -> DomainEntry:
        if domain not in self.manifest.domains:
            raise CorpusError(f"{self.uri}: no domain {domain!r} (domains: {', '.join(self.domains) or 'none'})")
        return self.manifest.domains[domain]

    def side_signals(self, domain: str, split: str) -> dict[str, int]:
        """Side signals (name → width) every video of a domain's split carries; {} when none or no such split."""
        st = self._domain(domain).splits.get(split)
        return dict(st.side) if st is not None else {}

    def parts(self, domain: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
        """The manifest's part records ``{path, rows, sha256}`` of a domain/split (all when ``None``)."""
        out: list[dict[str, Any]] = []
        for d in [domain] if domain else self.domains:
            entry = self._domain(d)
            for s, st in entry.splits.items():
                if split is None or s == split:
                    out.extend(st.parts)
        return out

    def full_path(self, rel: str) -> str:
        """The full path (within ``self.fs``) of a manifest part path, confined to the corpus root."""
        try:
            return posixpath.join(self.root, confined_part_path(rel))
        except ValueError as exc:
            raise CorpusError(f"{self.uri}: manifest: {exc}") from None

    def part_paths(self, domain: str | None = None, split: str | None = None) -> list[str]:
        """Full paths (within ``self.fs``) of the parts of a domain/split (all when ``None``), each confined to the root."""
        return [self.full_path(p["path"]) for p in self.parts(domain, split)]

    def read_part_bytes(self, part: dict[str, Any], verify: bool | None = None) -> bytes:
        """The bytes of one part, hashed while read and checked against the manifest (unless ``verify`` is off)."""
        path = self.full_path(part["path"])
        check = self.verify if verify is None else verify
        h = hashlib.sha256()
        chunks: list[bytes] = []

        def get() -> None:
            chunks.clear()
            with self.fs.open(path, "rb") as fh:
                while True:
                    chunk = fh.read(8 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)

        try:
            storage.retrying(self.fs, path, "read", get)
        except FileNotFoundError:
            raise CorpusError(f"{self.uri}: part {part['path']} is listed in the manifest but missing") from None
        data = b"".join(chunks)
        if check:
            h.update(data)
            if h.hexdigest() != part["sha256"]:
                raise CorpusError(
                    f"{self.uri}: part {part['path']} is corrupt: sha256 {h.hexdigest()[:16]}..., the manifest "
                    f"records {part['sha256'][:16]}... (restore or re-import it; corpus.verify=false skips the check)"
                )
        return data

    def verify_parts(self, domain: str | None = None, split: str | None = None) -> int:
        """Check every part of a domain/split (all when ``None``) against its recorded sha256; returns the count."""
        parts = self.parts(domain, split)
        for part in parts:
            self.read_part_bytes(part, verify=True)
        return len(parts)

    def _read_table(self, part: dict[str, Any], columns: Sequence[str] | None) -> pa.Table:
        data = self.read_part_bytes(part)
        return pq.read_table(pa.BufferReader(data), columns=list(columns) if columns else None)

    def part_uris(self, domain: str | None = None, split: str | None = None) -> list[str]:
        """Like :meth:`part_paths` but as URIs (``s3://...`` for remote corpora)."""
        paths = self.part_paths(domain, split)
        if self.uri.startswith("s3://"):
            return ["s3://" + p for p in paths]
        return paths

    def table(
        self, domain: str | None = None, split: str | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """Rows of a domain/split as one Arrow table (read part by part)."""
        parts = self.parts(domain, split)
        if not parts:
            return SCHEMA.empty_table().select(list(columns)) if columns else SCHEMA.empty_table()
        tables = [self._read_table(p, columns) for p in parts]
        return pa.concat_tables(tables, promote_options="default")  # parts with and without side columns

    def index(self, domain: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
        """Per-video metadata (no features, no gt) as a list of dicts."""
        return self.table(domain, split, columns=INDEX_COLUMNS).to_pylist()

    def videos(
        self, domain: str | None = None, split: str | None = None, ids: Iterable[str] | None = None
    ) -> Iterator[Video]:
        """Stream videos part by part (memory bounded by one part)."""
        wanted = set(ids) if ids is not None else None
        for p in self.parts(domain, split):
            table = self._read_table(p, None)
            for video in videos_from_table(table):
                if wanted is None or video.video_id in wanted:
                    yield video


def feature_arrays(table: pa.Table) -> Iterator[np.ndarray]:
    """Each row's ``features`` as a (T, K, C) float32 view (``n_snippets``, ``n_crops``), without copying."""
    feats = table.column("features").combine_chunks()
    flat = feats.values.to_numpy(zero_copy_only=False)
    offsets = feats.offsets.to_numpy()
    t_col = table.column("n_snippets").to_pylist()
    k_col = table.column("n_crops").to_pylist()
    for i, (t, k) in enumerate(zip(t_col, k_col)):
        yield flat[offsets[i] : offsets[i + 1]].reshape(t, k, -1)


def videos_from_table(table: pa.Table) -> Iterator[Video]:
    side_cols = {c[len(SIDE_PREFIX) :]: c for c in table.column_names if c.startswith(SIDE_PREFIX)}
    sides = {name: _flat_column(table.column(col)) for name, col in side_cols.items()}
    meta = table.select([c for c in table.column_names if c != "features" and c not in side_cols.values()]).to_pylist()
    for i, (row, arr) in enumerate(zip(meta, feature_arrays(table))):
        t = row["n_snippets"]
        gt = np.asarray(row["gt"], dtype=np.uint8) if row["gt"] is not None else None
        side = {}
        for name, (values, offs, valid) in sides.items():
            if valid[i]:
                a = values[offs[i] : offs[i + 1]]
                side[name] = a if SIDE_SIGNALS.get(name, 2) == 1 else a.reshape(t, -1)
        yield Video(
            video_id=row["video_id"],
            domain=row["domain"],
            split=row["split"],
            label=int(row["label"]),
            features=arr,
            categories=list(row["categories"] or []),
            gt=gt,
            fold=int(row["fold"]),
            source=row["source"] or row["domain"],
            side=side,
        )


def _flat_column(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A large_list<float32> column as (flat values, offsets, row is not null)."""
    arr = col.combine_chunks()
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return arr.values.to_numpy(zero_copy_only=False), arr.offsets.to_numpy(), valid


def _side_array(videos: Sequence[Video], name: str) -> pa.Array:
    """One ``side_<name>`` column; every video of the part must carry the signal, with the same width."""
    missing = [v.video_id for v in videos if name not in v.side]
    if missing:
        raise CorpusError(f"video {missing[0]!r}: no side signal {name!r}, other videos of its part have one "
                          f"(every video of a domain's split needs the same side signals)")
    widths = {v.video_id: side_width(np.asarray(v.side[name])) for v in videos}
    if len(set(widths.values())) > 1:
        w0 = widths[videos[0].video_id]
        odd = next(vid for vid, w in widths.items() if w != w0)
        raise CorpusError(f"video {odd!r}: side signal {name!r} has width {widths[odd]}, video "
                          f"{videos[0].video_id!r} has {w0}")
    arrs = [check_side(v.video_id, name, v.side[name], v.n_snippets).ravel() for v in videos]
    offsets = np.concatenate([[0], np.cumsum([a.size for a in arrs])]).astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(arrs), type=pa.float32()))


# --------------------------------------------------------------------------------------------------
# Writing


def videos_to_table(videos: Sequence[Video]) -> pa.Table:
    flat = np.concatenate([np.ascontiguousarray(v.features, dtype=np.float32).ravel() for v in videos])
    lengths = np.array([v.features.size for v in videos], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    features = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32()))
    gts = pa.array(
        [None if v.gt is None else np.asarray(v.gt, dtype=np.uint8) for v in videos], type=pa.list_(pa.uint8())
    )
    names = sorted({k for v in videos for k in v.side})
    table = pa.table(
        {
            "video_id": pa.array([v.video_id for v in videos], pa.string()),
            "domain": pa.array([v.domain for v in videos], pa.string()),
            "split": pa.array([v.split for v in videos], pa.string()),
            "label": pa.array([v.label for v in videos], pa.int8()),
            "category": pa.array([v.category for v in videos], pa.string()),
            "categories": pa.array([v.categories for v in videos], pa.list_(pa.string())),
            "n_snippets": pa.array([v.n_snippets for v in videos], pa.int32()),
            "n_crops": pa.array([v.n_crops for v in videos], pa.int16()),
            "features": features,
            "n_frames": pa.array([v.n_frames for v in videos], pa.int32()),
            "gt": gts,
            "fold": pa.array([v.fold for v in videos], pa.int16()),
            "source": pa.array([v.source or v.domain for v in videos], pa.string()),
        },
        schema=SCHEMA,
    )
    for name in names:  # only when present: a corpus without side signals keeps the plain schema
        table = table.append_column(pa.field(side_column(name), pa.large_list(pa.float32())), _side_array(videos, name))
    return table


class CorpusWriter:
    """Adds videos to a (new or existing) corpus; :meth:`commit` publishes them, :meth:`abort` undoes.

    Use as a context manager: an exception inside the ``with`` block aborts, deleting every part this
    writer wrote, and the manifest is untouched. Videos are buffered and flushed to part files of about
    ``part_bytes`` each, so memory stays bounded for large imports.
    """

    def __init__(
        self,
        uri: str,
        *,
        feature_dim: int,
        backbone: str = "unknown",
        frames_per_snippet: int = FRAMES_PER_SNIPPET,
        source_format: str = "",
        part_bytes: int = 128 << 20,
        compression: str = "lz4",
        lock_timeout: float | None = None,
        verify: bool = True,
        new: bool = False,
    ) -> None:
        self.uri = uri
        self.fs, self.root = storage.filesystem(uri)
        self.part_bytes = part_bytes
        self.compression = compression
        self.source_format = source_format
        self.verify = verify
        self._existing_ids: dict[str, set[str]] = {}
        self._buffer: dict[tuple[str, str], list[Video]] = {}
        self._buffer_bytes: dict[tuple[str, str], int] = {}
        self._written: list[str] = []
        self._made_dirs: list[str] = []  # directories this writer created, parents first (local only)
        self._done = False
        self._local = storage._is_local(self.fs)
        self._note_dirs(self.root)
        # One writer at a time: the manifest is read (again) only once the lock is held, so a concurrent
        # writer's commit is never overwritten.
        self._lock = CorpusLock(self.fs, self.root, uri, lock_timeout)
        try:
            self._lock.acquire()
            if Corpus.exists(uri):
                if new:
                    raise CorpusError(f"{uri}: a corpus already exists there; choose another output or delete it")
                self.manifest = Corpus.open(uri).manifest.model_copy(deep=True)
                if self.manifest.feature_dim != feature_dim:
                    raise CorpusError(
                        f"{uri}: corpus feature_dim is {self.manifest.feature_dim}, the new videos have {feature_dim}"
                    )
                if self.manifest.frames_per_snippet != frames_per_snippet:
                    raise CorpusError(
                        f"{uri}: corpus frames_per_snippet is {self.manifest.frames_per_snippet}, got {frames_per_snippet}"
                    )
            else:
                self.manifest = Manifest(feature_dim=feature_dim, backbone=backbone, frames_per_snippet=frames_per_snippet)
        except BaseException:
            self.abort()
            raise

    def _note_dirs(self, path: str) -> None:
        """Remember the directories up to ``path`` that do not exist yet (this writer will create them)."""
        if not self._local:
            return
        missing: list[str] = []
        d = path
        while d and not os.path.isdir(d):
            missing.append(d)
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        for m in reversed(missing):
            if m not in self._made_dirs:
                self._made_dirs.append(m)

    # -- context manager
    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._done:
            self.commit()

    def existing_ids(self, domain: str) -> set[str]:
        """Video ids already committed for ``domain`` (read from the corpus once)."""
        if domain not in self._existing_ids:
            ids: set[str] = set()
            if domain in self.manifest.domains:
                corpus = Corpus(self.uri, self.manifest, verify=self.verify)
                ids = set(corpus.table(domain, columns=["video_id"]).column("video_id").to_pylist())
            self._existing_ids[domain] = ids
        return self._existing_ids[domain]

    def add(self, video: Video) -> None:
        check_name("domain", video.domain, f"video {video.video_id!r}")
        check_name("split", video.split, f"video {video.video_id!r}")
        check_video_id(video.video_id, f"domain {video.domain!r}")
        if video.features.ndim != 3 or video.features.shape[2] != self.manifest.feature_dim:
            raise CorpusError(
                f"video {video.video_id!r}: features shape {tuple(video.features.shape)}, "
                f"expected (T, crops, {self.manifest.feature_dim})"
            )
        for name, arr in video.side.items():
            check_side(video.video_id, name, arr, video.n_snippets)
        if video.video_id in self.existing_ids(video.domain):
            raise CorpusError(f"video {video.video_id!r} is already in domain {video.domain!r} of {self.uri} "
                              f"(give the videos of another split a prefix with --id-prefix)")
        self.existing_ids(video.domain).add(video.video_id)
        key = (video.domain, video.split)
        self._buffer.setdefault(key, []).append(video)
        self._buffer_bytes[key] = self._buffer_bytes.get(key, 0) + video.features.nbytes
        if self._buffer_bytes[key] >= self.part_bytes:
            self._flush(key)

    def _flush(self, key: tuple[str, str]) -> None:
        videos = self._buffer.pop(key, [])
        self._buffer_bytes.pop(key, None)
        if not videos:
            return
        domain, split = key
        side = {k: side_width(np.asarray(a)) for k, a in videos[0].side.items()}
        known = self.manifest.domains.get(domain)
        st_old = known.splits.get(split) if known is not None else None
        if st_old is not None and st_old.videos and st_old.side != side:
            raise CorpusError(
                f"domain {domain!r}, split {split!r}: video {videos[0].video_id!r} has side signals {side or 'none'}, "
                f"the split's videos have {st_old.side or 'none'} (add side signals to a whole split with "
                f"`omnivad corpus add-side`)"
            )
        table = videos_to_table(videos)
        sink = io.BytesIO()
        # no dictionary encoding for the float/list columns: it never pays off there and costs ~30% time
        pq.write_table(table, sink, compression=self.compression, use_dictionary=_DICT_COLUMNS)
        data = sink.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        rel = f"videos/domain={domain}/split={split}/part-{digest[:16]}.parquet"
        path = posixpath.join(self.root, rel)
        self._note_dirs(posixpath.dirname(path))
        self._written.append(path)
        storage.write_bytes_atomic(self.fs, path, data)
        entry = self.manifest.domains.setdefault(domain, DomainEntry(source_format=self.source_format))
        crops = {v.n_crops for v in videos}
        if entry.n_crops is None and len(crops) == 1:
            entry.n_crops = crops.pop()
        elif entry.n_crops is not None and crops != {entry.n_crops}:
            raise CorpusError(
                f"domain {domain!r}: videos with {sorted(crops)} crops, the domain has {entry.n_crops}"
            )
        st = entry.splits.setdefault(split, SplitStats())
        st.side = side
        for v in videos:
            st.videos += 1
            st.abnormal += int(v.label == 1)
            st.normal += int(v.label == 0)
            st.snippets += v.n_snippets
            for c in v.categories or [v.category]:
                st.categories[c] = st.categories.get(c, 0) + 1
        st.parts.append({"path": rel, "rows": len(videos), "sha256": digest})

    def commit(self) -> Manifest:
        """Flush buffered videos and publish the manifest (the atomic commit point); releases the write lock."""
        try:
            for key in list(self._buffer):
                self._flush(key)
            storage.write_json_atomic(self.fs, posixpath.join(self.root, MANIFEST), self.manifest.model_dump())
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._lock.release()
        return self.manifest

    def abort(self) -> None:
        """Undo this writer: delete exactly the parts and directories it created, release the lock.

        The manifest was never touched. Directories that existed before (``--out`` itself, the user's empty
        directories) are kept; a directory that cannot be removed (a busy mount point) is left as it is.
        Best effort throughout: cleanup never masks the error that caused the abort.
        """
        for path in self._written:
            try:
                self.fs.rm(path)
            except Exception:  # noqa: BLE001
                pass
        self._written.clear()
        self._buffer.clear()
        self._done = True
        try:
            self._lock.release()
        except Exception:  # noqa: BLE001
            pass
        for d in reversed(self._made_dirs):
            try:
                os.rmdir(d)  # only when empty
            except OSError:
                pass
        self._made_dirs.clear()


def write_videos(uri: str, videos: Iterable[Video], *, feature_dim: int, **kwargs: Any) -> Manifest:
    """Convenience: write all ``videos`` in one transaction."""
    with CorpusWriter(uri, feature_dim=feature_dim, **kwargs) as writer:
        for v in videos:
            writer.add(v)
        return writer.commit()
