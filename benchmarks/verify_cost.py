"""Cost of part verification (sha256 of every part read, ``corpus.verify``) on import and on the first read.

Generates RTFM-layout ``.npy`` features (T = 64, 10 crops, C = 1024, float32: 2.6 MB a video) for ``--domains``
domains, about ``--gb`` GB in all (not timed). Then, in the same run, with verification on and off:

* import: per domain a train import then a test import into the same domain -- the second import reads the
  domain's committed parts (the duplicate-id check), which is where an import verifies;
* first read: ``Corpus.videos()`` over the whole corpus (every part read once, features decoded), right after
  the imports (the page cache is warm, as it is on a machine that just imported or fetched the corpus).

Prints seconds and the verify/no-verify ratio of each.

    python benchmarks/verify_cost.py [--gb 1.0] [--domains 2] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from omnivad.corpus.format import Corpus
from omnivad.corpus.importers import import_corpus

T, CROPS, DIM = 64, 10, 1024


def generate(root: Path, domains: int, gb: float) -> tuple[list[tuple[str, str, Path]], int]:
    per_video = T * CROPS * DIM * 4
    n = max(4, int(gb * 1e9 / per_video) // (2 * domains) * 2)  # videos per domain, even
    rng = np.random.default_rng(0)
    jobs, total = [], 0
    for d in range(domains):
        for split in ("train", "test"):
            ddir = root / f"D{d}-{split}"
            ddir.mkdir(parents=True)
            lines = []
            for i in range(n // 2):
                a = rng.standard_normal((T, CROPS, DIM), dtype=np.float32)
                np.save(ddir / f"v{i:04d}.npy", a)
                lines.append(str(ddir / f"v{i:04d}.npy"))
                total += a.nbytes
            (ddir / "list").write_text("\n".join(lines) + "\n")
            jobs.append((f"D{d}", split, ddir / "list"))
    return jobs, total


def run(jobs: list[tuple[str, str, Path]], out: Path, verify: bool) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    for domain, split, lst in jobs:
        import_corpus("rtfm", lst, str(out), domain=domain, split=split, abnormal_first=2, progress=False,
                      verify=verify, id_prefix="t_" if split == "test" else "")
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = sum(1 for _ in Corpus.open(str(out), verify=verify).videos())
    return t_import, time.perf_counter() - t0, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--domains", type=int, default=2)
    ap.add_argument("--tmp", help="scratch directory (default: a new temporary directory, removed afterwards)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="omnivad-verify-", dir=args.tmp))
    try:
        jobs, total = generate(root / "src", args.domains, args.gb)
        print(f"{len(jobs)} imports, {total / 1e9:.2f} GB of features", file=sys.stderr)
        rows = {}
        for verify in (False, True, False, True):  # interleaved, best of two: less sensitive to a busy machine
            out = root / f"corpus-{verify}"
            shutil.rmtree(out, ignore_errors=True)
            t_imp, t_read, n = run(jobs, out, verify)
            best = rows.get(verify, (float("inf"), float("inf"), n))
            rows[verify] = (min(best[0], t_imp), min(best[1], t_read), n)
        size = sum(p.stat().st_size for p in (root / "corpus-True").rglob("*.parquet"))
        print(f"corpus: {size / 1e9:.2f} GB of parts, {rows[True][2]} videos")
        print(f"{'':<12} {'no verify':>10} {'verify':>10} {'ratio':>7}")
        for i, what in enumerate(("import", "first read")):
            off, on = rows[False][i], rows[True][i]
            print(f"{what:<12} {off:>9.2f}s {on:>9.2f}s {on / off:>6.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
