"""Method zoo speed: training step time and inference snippets/s of every method on the same data, one run.

Each entry (a ``--methods`` entry: ``METHOD[@TRUNK][+ac|+noac]``) builds its model with the default config (the
papers' widths) for ``--dim``-d features, then

* **train**: ``--steps`` timed steps (after 2 untimed warm-up steps) of ``method.loss`` + backward + Adam on the
  same random (B,K,T,C) batch: ``--batch`` normal + ``--batch`` abnormal videos, ``--crops`` crops, T = ``--segments``;
* **infer**: ``method.score`` (eval mode, crops averaged) on ``--videos`` full-length videos of ``--length``
  snippets; snippets/s counts each video's snippets once.

Ratios are against ``mil`` (MDVAD's single-head MIL on the default trunk), measured in the same run. CPU threads
are fixed with ``--threads`` (default 1, like a 1-CPU Ray Train worker).

    python benchmarks/zoo_speed.py [--methods mil,mmil,bn-wvad,nullang-mil,nullang-mil@bn-wvad,como] [--dim 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

try:
    import omnivad  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

import torch  # noqa: E402

from omnivad import config  # noqa: E402
from omnivad.methods.base import Batch  # noqa: E402
from omnivad.methods.registry import get_method, list_methods  # noqa: E402
from omnivad.protocols.runner import parse_method_entry  # noqa: E402


def default_entries() -> list[str]:
    wanted = ["mil", "mmil", "bn-wvad", "nullang-mil", "nullang-mil@bn-wvad", "como"]
    known = set(list_methods())
    return [e for e in wanted if e.split("@")[0] in known]


def time_entry(entry: str, args: argparse.Namespace, batch: Batch, videos: list[torch.Tensor]) -> dict[str, float]:
    overrides = [f"{k}={json.dumps(v)}" for k, v in parse_method_entry(entry).items()]
    cfg = config.load(overrides=[*overrides, f"data.segments={args.segments}"])
    method = get_method(cfg.model.method)
    torch.manual_seed(0)
    model = method.build(cfg, ["A"], args.dim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        loss, _ = method.loss(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    step_s = (time.perf_counter() - t0) / args.steps
    model.eval()
    method.score(model, videos[0], "A")  # warm-up
    t0 = time.perf_counter()
    for v in videos:
        method.score(model, v, "A")
    infer_s = time.perf_counter() - t0
    return {
        "params": float(sum(p.numel() for p in model.parameters())),
        "step_ms": 1000 * step_s,
        "train_snippets_per_s": batch.x.shape[0] * batch.x.shape[1] * batch.x.shape[2] / step_s,
        "infer_snippets_per_s": sum(v.shape[1] for v in videos) / infer_s,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--methods", help="comma-separated entries (default: the zoo, como when registered)")
    p.add_argument("--dim", type=int, default=1024, help="feature dimension C")
    p.add_argument("--segments", type=int, default=32, help="T of a training video")
    p.add_argument("--batch", type=int, default=16, help="normal (and abnormal) videos per step")
    p.add_argument("--crops", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--videos", type=int, default=8, help="test videos scored")
    p.add_argument("--length", type=int, default=256, help="snippets per test video")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    entries = args.methods.split(",") if args.methods else default_entries()
    if "mil" not in entries:
        entries = ["mil", *entries]

    g = torch.Generator().manual_seed(0)
    b = 2 * args.batch
    batch = Batch(
        x=torch.randn(b, args.crops, args.segments, args.dim, generator=g),
        mask=torch.ones(b, args.crops, dtype=torch.bool),
        y=torch.cat([torch.zeros(args.batch), torch.ones(args.batch)]),
        dom=torch.zeros(b, dtype=torch.long),
    )
    videos = [torch.randn(args.crops, args.length, args.dim, generator=g) for _ in range(args.videos)]
    print(f"zoo speed: C={args.dim}, train batch {args.batch}+{args.batch} videos × {args.crops} crop(s) × "
          f"T={args.segments}, {args.steps} steps; inference {args.videos} videos × {args.length} snippets; "
          f"{args.threads} thread(s)", flush=True)
    rows = {}
    for e in entries:
        rows[e] = time_entry(e, args, batch, videos)
        print(f"  {e}: {rows[e]['step_ms']:.1f} ms/step, {rows[e]['infer_snippets_per_s']:.0f} snippets/s", flush=True)
    base = rows["mil"]
    print()
    print("| method | params | train ms/step | × mil | train snippets/s | inference snippets/s | × mil |")
    print("|---|---|---|---|---|---|---|")
    for e, r in rows.items():
        print(f"| {e} | {r['params'] / 1e6:.2f} M | {r['step_ms']:.1f} | {r['step_ms'] / base['step_ms']:.2f} | "
              f"{r['train_snippets_per_s']:.0f} | {r['infer_snippets_per_s']:.0f} | "
              f"{r['infer_snippets_per_s'] / base['infer_snippets_per_s']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
