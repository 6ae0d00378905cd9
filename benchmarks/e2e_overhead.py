"""The demo job's whole-process wall time against the same work in one plain process, with the job's phases.

Runs, one after the other, in fresh processes (imports included in both):

* **plain**: ``python benchmarks/e2e_overhead.py --plain``: the demo job's work without Ray: E1 fold 0 of the demo
  corpus (the demo profile: 600 steps at lr 1e-3, NullAng-MIL), ``engine.local.train_local``, then every test video
  scored with ``method.score`` and the frame AUC computed;
* **job**: ``python jobs/mdvad.py --out <fresh dir>`` (the demo job: embedded Ray, E1, test scoring, the table).

Prints both wall times, the job's run phases (``timing`` of its ``history.json``, engine/timing.py) plus what lies
outside the training run (Ray start-up, imports, test scoring, the tables: the job's wall time less the run's
``total``), the job's log-line count (and Ray's PlacementGroupCleaner lines), and last ``ratio: job / plain``.
Target: ratio <= 1.3.

    python benchmarks/e2e_overhead.py [--steps 600] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "platform"))


def plain(steps: int | None) -> None:
    """The demo job's work in this process (what the job's Ray path is compared against)."""
    import numpy as np
    import torch

    from omnivad import config
    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.corpus.format import Corpus
    from omnivad.engine.local import train_local
    from omnivad.engine.precision import score
    from omnivad.engine.spec import RunSpec
    from omnivad.metrics import evaluate_corpus
    from omnivad.protocols import protocol_splits

    torch.set_num_threads(1)  # the Ray Train worker's one CPU
    cfg = config.load(overrides=[f"train.steps={steps}"] if steps else [], base=config.DEMO_PROFILE)
    corpus = Corpus.open(cfg.corpus.uri)
    split = protocol_splits(build_benchmark(corpus, cfg.benchmark, corpus.domains), "E1", 0)
    spec = RunSpec(name="plain", corpus_uri=corpus.uri, train=split.train, val=split.val,
                   head_domains=list(corpus.domains), steps=cfg.train.steps, seed=cfg.train.seed)
    method, model = train_local(cfg, spec)
    scores = {}
    for d in corpus.domains:
        for v in corpus.videos(d, "test"):
            x = torch.from_numpy(np.ascontiguousarray(v.features.transpose(1, 0, 2)))
            scores[f"{d}/{v.video_id}"] = score(method, model, x, d, cfg.train.precision)
    evaluate_corpus(corpus, scores, corpus.domains, align=cfg.metrics.align)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=None, help="default: the demo profile's 600")
    ap.add_argument("--keep", default=None, help="the job's output directory (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.plain:
        plain(args.steps)
        return 0
    env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "platform")}
    steps = ["--steps", str(args.steps)] if args.steps else []
    print(f"load before {os.getloadavg()[0]:.1f} (2-minute-ish figures are noisy under load)", flush=True)
    t_plain, _ = timed([sys.executable, os.path.join(HERE, "e2e_overhead.py"), "--plain", *steps], env)
    print(f"plain process: {t_plain:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    out = args.keep or tempfile.mkdtemp(prefix="omnivad-e2e-")
    t_job, log = timed([sys.executable, os.path.join(REPO, "jobs", "mdvad.py"), "--out", out,
                        *(["--set", f"train.steps={args.steps}"] if args.steps else [])], env)
    lines = log.splitlines()
    print(f"demo job: {t_job:.1f} s (load {os.getloadavg()[0]:.1f}); {len(lines)} log lines, "
          f"{sum('PlacementGroupCleaner' in ln for ln in lines)} of them PlacementGroupCleaner", flush=True)
    histories = sorted(glob.glob(os.path.join(out, "**", "history.json"), recursive=True))
    fit_total = 0.0
    for h in histories:
        timing = json.load(open(h))[-1].get("timing", {})
        fit_total += timing.get("total", 0.0)
        print(f"  run {os.path.relpath(h, out)}:")
        for k, v in timing.items():
            print(f"    {k:17s} {v:7.2f} s  {100 * v / t_job:5.1f}% of the job")
    rest = t_job - fit_total
    print(f"  outside the training run(s) (interpreter + imports, Ray start, test scoring, tables): {rest:.2f} s "
          f"({100 * rest / t_job:.1f}%)")
    print(f"ratio: {t_job / t_plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
