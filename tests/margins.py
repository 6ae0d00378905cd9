"""Measure every learning claim over several seeds and print the margin each claim's bar keeps.

    python tests/margins.py                       # seeds 0-4, the default (non-slow) learning tests
    python tests/margins.py --seeds 0-9 -- -m "learning and not ray" tests/methods

For each seed it runs ``pytest -m learning`` (extra pytest arguments after ``--``) with ``OMNIVAD_TEST_SEED=<seed>``
(every learning test adds it to its corpus and training seeds) and ``OMNIVAD_MARGINS_OUT`` set, so each
``claim(...)`` records the statistic it asserts on (see tests/conftest.py). It then prints, per claim, the bar, the
per-seed values, mean ± sample std, the worst seed and the margin (worst seed minus the bar, in the claim's
direction, also in units of the std). A claim whose margin is within about one std of its bar is fragile: on
another CPU model (other BLAS/oneDNN kernels) the same seed can land on the wrong side. tests/README.md keeps the
table measured on our machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        seeds.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return seeds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0-4", help="seed offsets, e.g. 0-4 or 0,3,7 (default: 0-4)")
    p.add_argument("--out", default=None, help="also write the raw records (JSON lines) here")
    p.add_argument("pytest_args", nargs="*", help="after --: pytest arguments (default: -m learning tests)")
    args = p.parse_args(argv)
    extra = args.pytest_args or ["-m", "learning", "tests"]
    raw = args.out or os.path.join(tempfile.mkdtemp(prefix="omnivad-margins-"), "claims.jsonl")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for seed in parse_seeds(args.seeds):
        env = dict(os.environ, OMNIVAD_TEST_SEED=str(seed), OMNIVAD_MARGINS_OUT=raw)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra], cwd=here, env=env)
        print(f"== seed {seed}: pytest exit {rc} in {time.monotonic() - t0:.0f} s", flush=True)
    print(table(raw))
    return 0


def table(raw: str) -> str:
    recs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with open(raw, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            recs[(r["test"], r["claim"])].append(r)
    lines = ["| test | claim | bar | per seed | mean ± std | worst | margin (worst − bar) | margin / std |",
             "|---|---|---|---|---|---|---|---|"]
    for (test, name), rs in sorted(recs.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        vals = [r["value"] for r in rs]
        op, bar = rs[0]["op"], rs[0]["bar"]
        up = op in (">", ">=")
        worst = min(vals) if up else max(vals)
        margin = (worst - bar) if up else (bar - worst)
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        per = " ".join(f"{r['seed']}:{r['value']:.3f}" for r in rs)
        ratio = f"{margin / sd:.1f}" if sd and sd == sd and sd > 0 else "—"
        lines.append(f"| {test.split('::', 1)[-1]} ({test.split('::')[0].removeprefix('tests/')}) | {name} | {op} {bar:g} "
                     f"| {per} | {statistics.fmean(vals):.3f} ± {sd:.3f} | {worst:.3f} | {margin:+.3f} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
