"""Per-domain Ray Datasets over a corpus (local or s3://).

Each domain's split is its own dataset, read straight from the corpus's Parquet parts by Ray Data;
the driver only reads the manifest and the metadata index. Training datasets are resampled to T
segments inside the pipeline (RTFM ``process_feat``), so workers receive ``(T, K, C)`` arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from omnivad import storage
from omnivad.corpus.format import SIDE_PREFIX, SIDE_SIGNALS, Corpus, side_column
from omnivad.data.pools import Pool

READ_COLUMNS = ["video_id", "label", "n_snippets", "n_crops", "features"]


def quiet_progress() -> None:
    """Ray Data progress bars off (they flood job logs); ``OMNIVAD_PROGRESS=1`` keeps them."""
    import os

    import ray.data

    if os.environ.get("OMNIVAD_PROGRESS") != "1":
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.enable_operator_progress_bars = False


def resample_segments(feat: np.ndarray, segments: int = 32, mode: str = "mean") -> np.ndarray:
    """``(T, K, C)`` → ``(segments, K, C)``.

    ``mean`` (MDVAD A13, RTFM ``process_feat``): ``linspace(0, T, segments+1)`` chunk boundaries, each
    chunk mean-pooled; an empty chunk copies the snippet at its start. ``nearest``: snippets at
    ``linspace`` positions.
    """
    t = feat.shape[0]
    if mode == "nearest":
        idx = np.linspace(0, t - 1, segments).round().astype(np.int64)
        return feat[idx].astype(np.float32, copy=False)
    r = np.linspace(0, t, segments + 1, dtype=np.int32)
    # reduceat sums each chunk and, for an empty chunk, returns the snippet at its start: RTFM's rule
    sums = np.add.reduceat(feat.astype(np.float32, copy=False), r[:-1], axis=0)
    counts = np.maximum(np.diff(r), 1).astype(np.float32)
    return sums / counts.reshape(-1, *([1] * (feat.ndim - 1)))


class _Resample:
    """Ray Data map_batches function: keep the wanted videos, resample them to T segments."""

    def __init__(self, ids: list[str] | None, feature_dim: int, segments: int, mode: str,
                 side: dict[str, int] | None = None) -> None:
        self.ids = pa.array(sorted(ids), pa.string()) if ids is not None else None
        self.c = feature_dim
        self.segments = segments
        self.mode = mode
        self.side = dict(side or {})  # side signals to resample with the features: name → width

    def __call__(self, table: pa.Table) -> dict[str, Any]:
        if self.ids is not None:
            table = table.filter(pc.is_in(table.column("video_id"), value_set=self.ids))
        n = table.num_rows
        feats = table.column("features").combine_chunks() if n else None
        ids = table.column("video_id").to_pylist()
        labels = np.asarray(table.column("label").to_numpy(zero_copy_only=False), dtype=np.int64)
        t_col = table.column("n_snippets").to_pylist()
        k_col = table.column("n_crops").to_pylist()
        xs = []
        if n:
            flat = feats.values.to_numpy(zero_copy_only=False)
            offsets = feats.offsets.to_numpy()
            for i in range(n):
                f = flat[offsets[i] : offsets[i + 1]].reshape(t_col[i], k_col[i], self.c)
                xs.append(resample_segments(f, self.segments, self.mode))
        k = max(k_col) if k_col else 1
        x = np.stack(xs) if xs else np.zeros((0, self.segments, k, self.c), np.float32)
        out = {"video_id": np.asarray(ids, dtype=object), "label": labels, "x": x}
        for name, width in self.side.items():
            arrs = []
            if n:
                col = table.column(side_column(name)).combine_chunks()
                values, offs = col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy()
                for i in range(n):
                    a = values[offs[i] : offs[i + 1]]
                    a = a if SIDE_SIGNALS[name] == 1 else a.reshape(t_col[i], width)
                    arrs.append(resample_segments(a, self.segments, self.mode))
            shape = (self.segments,) if SIDE_SIGNALS[name] == 1 else (self.segments, width)
            out[side_column(name)] = np.stack(arrs) if arrs else np.zeros((0, *shape), np.float32)
        return out


class _VerifiedPart:
    """Ray Data map_batches function: read whole parts, each hashed while read and checked against the sha256 the
    manifest records (:meth:`Corpus.read_part_bytes`, the check every driver-side read makes), then parsed."""

    def __init__(self, corpus: Corpus, columns: list[str]) -> None:
        self.corpus = corpus
        self.columns = columns

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        import pyarrow.parquet as pq

        tables = []
        for path, sha, rows in zip(batch["path"], batch["sha256"], batch["rows"]):
            data = self.corpus.read_part_bytes({"path": str(path), "sha256": str(sha), "rows": int(rows)}, verify=True)
            tables.append(pq.read_table(pa.BufferReader(data), columns=self.columns))
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def parts_dataset(corpus: Corpus, parts: list[dict[str, Any]], columns: list[str]) -> Any:
    """A Ray Dataset of the rows (``columns``) of corpus ``parts`` (manifest records).

    With ``corpus.verify`` (the default) each part is read whole by one Ray task, hashed while read and checked
    against its recorded sha256: a mismatch fails the dataset with the error naming the part and the corpus, as
    every driver-side read does. With ``corpus.verify=false`` it is Ray Data's streaming ``read_parquet``.
    """
    import ray.data

    if not parts:
        raise ValueError(f"corpus {corpus.uri}: no parts to read")
    if not corpus.verify:
        paths = [corpus.full_path(p["path"]) for p in parts]
        return ray.data.read_parquet(paths, filesystem=storage.arrow_filesystem(corpus.fs)).select_columns(columns)
    items = [{"path": p["path"], "sha256": p["sha256"], "rows": int(p.get("rows", 0))} for p in parts]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    return ds.map_batches(_VerifiedPart(corpus, list(columns)), batch_size=1, batch_format="numpy")


def domain_dataset(
    corpus: Corpus,
    domain: str,
    split: str,
    ids: Iterable[str] | None = None,
    segments: int = 32,
    mode: str = "mean",
) -> Any:
    """A Ray Dataset of one domain's split (only ``ids`` when given); rows carry ``video_id``,
    ``label`` and ``x`` of shape ``(segments, K, C)``."""
    parts = corpus.parts(domain, split)
    if not parts:
        raise ValueError(f"corpus {corpus.uri}: domain {domain!r} has no {split!r} split")
    side = corpus.side_signals(domain, split)
    ds = parts_dataset(corpus, parts, READ_COLUMNS + [side_column(k) for k in side])
    fn = _Resample(list(ids) if ids is not None else None, corpus.feature_dim, segments, mode, side)
    return ds.map_batches(fn, batch_format="pyarrow", batch_size=16, zero_copy_batch=True)


def collect_pools(shard: Any, domain: str) -> dict[tuple[str, int], Pool]:
    """Materialise a worker's shard of one domain (already resampled) as per-label pools, sorted by id."""
    ids: list[str] = []
    labels: list[int] = []
    xs: list[np.ndarray] = []
    sides: dict[str, list[np.ndarray]] = {}
    for batch in shard.iter_batches(batch_format="numpy", batch_size=64):
        ids.extend(str(v) for v in batch["video_id"])
        labels.extend(int(v) for v in batch["label"])
        xs.extend(batch["x"])
        for key in batch:
            if key.startswith(SIDE_PREFIX):
                sides.setdefault(key[len(SIDE_PREFIX) :], []).extend(batch[key])
    order = np.argsort(np.asarray(ids, dtype=object)) if ids else np.zeros(0, np.int64)
    pools: dict[tuple[str, int], Pool] = {}
    for y in (0, 1):
        sel = [i for i in order if labels[i] == y]
        x = np.stack([xs[i] for i in sel]) if sel else np.zeros((0,), np.float32)
        side = {k: np.stack([v[i] for i in sel]) for k, v in sides.items()} if sel else {}
        pools[(domain, y)] = Pool(ids=[ids[i] for i in sel], x=x, side=side)
    return pools
