"""Synthetic corpus speed: ``synthesize`` (generate + write the corpus format) against generating the same videos
in memory (``generate``), in one run. The default demo corpus used to be asserted to take < 2 s inside a unit test
(tests/corpus/test_synth.py); a timing belongs here, next to its baseline.

    python benchmarks/synth_speed.py [--domains 4] [--videos 60] [--dim 64] [--repeat 3]

Prints the best of ``--repeat`` runs for each and the ratio. Target: the default corpus in < 2 s on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from omnivad.corpus.synth import SynthConfig, generate, synthesize


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domains", type=int, default=4)
    p.add_argument("--videos", type=int, default=60, help="training videos per domain")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    cfg = SynthConfig(domains=a.domains, videos_per_domain=a.videos, dim=a.dim)
    gen, syn = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        generate(cfg)
        gen.append(time.perf_counter() - t0)
        tmp = tempfile.mkdtemp(prefix="omnivad-synth-bench-")
        try:
            t0 = time.perf_counter()
            synthesize(f"{tmp}/corpus", cfg)
            syn.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    g, s = min(gen), min(syn)
    print("| what | best of %d (s) |\n|---|---|" % a.repeat)
    print(f"| baseline: generate() in memory | {g:.3f} |\n| synthesize() to disk | {s:.3f} |")
    print(f"ratio synthesize / generate: {s / g:.2f}x; target < 2 s: {'met' if s < 2.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
