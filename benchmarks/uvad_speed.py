"""UVAD executors on one machine: the Ray executor's per-loop time ÷ the local one's, and 1 vs N domains.

    PYTHONPATH=platform python benchmarks/uvad_speed.py [--domains N] [--videos 80] [--dim 128] [--crops 10]
                                                        [--loops 6] [--ws-iters 500] [--out DIR]

On a synthetic feature corpus (N domains, default N = the machine's CPU count), one module of ``--loops``
loops (``--occ ae --ws rtfm --q 0.3``, the paper's 500 WS iterations per loop) is run three times, each in a
fresh run directory:

1. ``uvad.executor=local`` on one domain (in this process, before Ray starts; torch threads =
   ``scaling.cpus_per_worker``, as in a Ray worker);
2. ``uvad.executor=ray`` on the same domain (one worker group of one worker);
3. ``uvad.executor=ray`` on all N domains (one worker group, N workers in parallel).

Per-loop time is the job's wall time ÷ its loops (so the Ray executor's one worker-group launch is charged to
it; starting the local Ray itself is timed separately and left out), with
the loop records' own mean for comparison. The last line is ``ratio: X.XX`` (Ray ÷ local per-loop time).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

from omnivad import config  # noqa: E402
from omnivad.corpus.format import write_videos  # noqa: E402
from omnivad.corpus.synth import SynthConfig, generate  # noqa: E402
from omnivad.uvad.runner import run_uvad  # noqa: E402


def make_corpus(uri: str, domains: int, videos: int, dim: int, crops: int) -> list[str]:
    vids = generate(SynthConfig(domains=domains, videos_per_domain=videos, test_videos_per_domain=max(4, videos // 4),
                                dim=dim, crops=crops, event_norm=2.0, seed=0))
    for v in vids:
        if v.split == "train":
            v.label, v.gt, v.categories = -1, None, ["unknown"]
    write_videos(uri, vids, feature_dim=dim)
    return sorted({v.domain for v in vids})


def timed(corpus: str, out: str, executor: str, domains: list[str], loops: int, ws_iters: int) -> dict[str, Any]:
    cfg = config.load(overrides=[f"corpus.uri={corpus}", f"storage.out={out}", f"uvad.executor={executor}",
                                 f"corpus.domains={domains!r}".replace("'", '"'), "uvad.occ=ae", "uvad.ws=rtfm",
                                 "uvad.q=0.3", f"uvad.loops={loops}", "uvad.max_modules=1",
                                 f"uvad.ws_iters={ws_iters}"])
    tic = time.perf_counter()
    res = run_uvad(cfg, analysis=False)
    wall = time.perf_counter() - tic
    n_loops = sum(len(d["loops"]) for d in res["per_domain"].values())
    assert n_loops == loops * len(domains), res["executed"]
    rec = float(np.mean([r["seconds"] for d in res["per_domain"].values() for r in d["loops"]]))
    return {"wall": wall, "per_loop": wall / loops, "record_mean": rec}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", type=int, default=os.cpu_count() or 1)
    p.add_argument("--videos", type=int, default=80)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--crops", type=int, default=10)
    p.add_argument("--loops", type=int, default=6)
    p.add_argument("--ws-iters", type=int, default=500, help="WS iterations per loop (the paper's 500)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    root = a.out or tempfile.mkdtemp(prefix="uvad-speed-")
    corpus = os.path.join(root, "corpus")
    names = make_corpus(corpus, a.domains, a.videos, a.dim, a.crops)
    print(f"corpus: {len(names)} domains x {a.videos} training videos, C={a.dim}, {a.crops} crops; "
          f"one module of {a.loops} loops; load {os.getloadavg()[0]:.2f}", flush=True)
    torch.set_num_threads(1)  # = scaling.cpus_per_worker, the threads of a Ray worker
    local = timed(corpus, os.path.join(root, "local"), "local", names[:1], a.loops, a.ws_iters)
    from omnivad.protocols.runner import ensure_ray

    tic = time.perf_counter()
    ensure_ray(config.load(overrides=[f"corpus.uri={corpus}"]))  # the local Ray itself is not timed below
    print(f"ray.init: {time.perf_counter() - tic:.1f}s (not in the figures below)", flush=True)
    ray1 = timed(corpus, os.path.join(root, "ray1"), "ray", names[:1], a.loops, a.ws_iters)
    rayn = timed(corpus, os.path.join(root, "rayn"), "ray", names, a.loops, a.ws_iters)
    for name, r in (("local, 1 domain", local), ("ray, 1 domain", ray1), (f"ray, {len(names)} domains", rayn)):
        print(f"{name:>18}: wall {r['wall']:7.1f}s  wall/loop {r['per_loop']:6.2f}s  loop records {r['record_mean']:6.2f}s")
    print(f"loop records only (no launch): ray/local {ray1['record_mean'] / local['record_mean']:.2f}")
    print(f"whole run, {len(names)} domains / 1 domain (ray): {rayn['wall'] / ray1['wall']:.2f}")
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    print(f"ratio: {ray1['per_loop'] / local['per_loop']:.2f}")


if __name__ == "__main__":
    main()
