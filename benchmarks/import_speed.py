"""Import speed: ``import_corpus`` against the minimal I/O of the same job.

Generates ``--domains`` × ``--videos`` RTFM-layout ``.npy`` files (T ≈ 64 varied, 10 crops, C = 1024,
float32) in a temporary directory (not timed), then times

* baseline: ``np.load`` of every file + one Parquet file written with pyarrow (same lz4 codec, a row
  group per ~128 MB like the writer's parts) -- the least any importer has to do;
* import: :func:`omnivad.corpus.importers.import_corpus` for every domain (train split,
  ``abnormal_first``), i.e. header validation, NaN/Inf checks, hashing, the manifest.

Prints seconds, MB/s (of ``.npy`` input) and the import/baseline ratio. Target: < 60 s total on 2 cores.

    python benchmarks/import_speed.py [--domains 4] [--videos 120] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from omnivad.corpus.importers import import_corpus


def generate(root: Path, domains: int, videos: int, crops: int, dim: int, t_mean: int) -> tuple[list[Path], int]:
    rng = np.random.default_rng(0)
    lists, total = [], 0
    for d in range(domains):
        ddir = root / f"D{d}"
        ddir.mkdir(parents=True)
        lines = []
        for i in range(videos):
            t = int(rng.integers(t_mean // 2, t_mean * 3 // 2 + 1))
            a = rng.random((t, crops, dim), dtype=np.float32)
            p = ddir / f"D{d}_video_{i:04d}_i3d.npy"
            np.save(p, a)
            total += p.stat().st_size
            lines.append(str(p))
        lst = root / f"D{d}.list"
        lst.write_text("\n".join(lines) + "\n")
        lists.append(lst)
    return lists, total


def baseline(lists: list[Path], out: Path, chunk_bytes: int = 128 << 20) -> float:
    """np.load every file and append it to one Parquet file, a row group per ~128 MB (the writer's part size)."""
    t0 = time.perf_counter()
    schema = pa.schema([("video_id", pa.string()), ("features", pa.large_list(pa.float32()))])

    def flush(w: pq.ParquetWriter, ids: list[str], arrays: list[np.ndarray]) -> None:
        flat = np.concatenate([a.ravel() for a in arrays])
        offsets = np.concatenate([[0], np.cumsum([a.size for a in arrays])]).astype(np.int64)
        feats = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat))
        w.write_table(pa.table({"video_id": pa.array(ids), "features": feats}, schema=schema))

    with pq.ParquetWriter(out, schema, compression="lz4") as w:
        for lst in lists:
            ids: list[str] = []
            arrays: list[np.ndarray] = []
            size = 0
            for p in (ln for ln in lst.read_text().split("\n") if ln):
                arrays.append(np.load(p, allow_pickle=False))
                ids.append(os.path.basename(p)[:-4])
                size += arrays[-1].nbytes
                if size >= chunk_bytes:
                    flush(w, ids, arrays)
                    ids, arrays, size = [], [], 0
            if arrays:
                flush(w, ids, arrays)
    return time.perf_counter() - t0


def run_import(lists: list[Path], out: Path, videos: int) -> float:
    t0 = time.perf_counter()
    for lst in lists:
        import_corpus("rtfm", lst, str(out), domain=lst.stem, split="train",
                      abnormal_first=videos // 3, progress=False)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=4)
    ap.add_argument("--videos", type=int, default=120)
    ap.add_argument("--snippets", type=int, default=64, help="mean T (varied ±50%%)")
    ap.add_argument("--crops", type=int, default=10)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--tmp", default=None, help="scratch directory (default: system temp)")
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="omnivad-import-bench-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        lists, nbytes = generate(root / "src", args.domains, args.videos, args.crops, args.dim, args.snippets)
        mb = nbytes / 1e6
        print(f"generated {args.domains}x{args.videos} videos, {mb:.0f} MB of .npy in "
              f"{time.perf_counter() - t0:.1f} s (not timed); cpus={os.cpu_count()}", flush=True)
        # warm the page cache the same way for both contenders
        for lst in lists:
            for p in lst.read_text().split():
                Path(p).read_bytes()
        tb = baseline(lists, root / "baseline.parquet")
        ti = run_import(lists, root / "corpus", args.videos)
        print(f"baseline (np.load + one parquet): {tb:6.2f} s  {mb / tb:7.1f} MB/s")
        print(f"import_corpus ({args.domains} domains): {ti:6.2f} s  {mb / ti:7.1f} MB/s")
        print(f"ratio import/baseline: {ti / tb:.2f}x   target < 60 s total: {'OK' if ti < 60 else 'MISSED'}")
        return 0 if ti < 60 else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
