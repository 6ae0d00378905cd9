"""Extraction speed: decode + backbone snippets/s against decoding alone, in one run.

Generates ``--videos`` synthetic videos (moving shapes, ``--frames`` frames at ``--size``, mp4) in a
temporary directory (not timed), then times on a local Ray (``--cpus``):

* decode, in process: :class:`omnivad.video.snippets.SnippetStream` over every video (PyAV decode,
  resize, crop) -- the decoder alone, no Ray: the baseline of every ratio;
* decode + extract, in process: the same plus the backbone in this process (same threads, batch size);
* decode on Ray Data: the extraction pipeline without the backbone stage
  (``snippet_dataset(extract=False)``), every snippet pulled to the driver;
* decode + extract on Ray Data: the full pipeline (decode tasks → backbone actor pool), as
  ``jobs/extract.py`` runs it, features pulled to the driver (corpus writing not included).

Prints snippets/s and crop-clips/s for each and the ratios against in-process decoding; for the Ray
passes also the *steady* rate, from the first delivered batch to the last (Ray worker start-up, imports
and the backbone build happen before the first batch). The backbone
defaults to the full-size I3D with random weights (the speed does not depend on the weights).

    python benchmarks/extract_speed.py [--videos 8] [--frames 160] [--size 128x170] [--backbone i3d]
        [--width 1.0] [--crops center] [--resize 128] [--crop-size 112] [--actors 1] [--batch-size 8] [--gpu]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

from omnivad import config  # noqa: E402
from omnivad.video.io import write_video  # noqa: E402
from omnivad.video.snippets import SnippetStream, n_crops  # noqa: E402
from omnivad.video.synth import moving_shapes  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--size", default="128x170", help="HxW of the generated videos")
    p.add_argument("--backbone", default="i3d")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--crops", default="center", choices=["center", "ten"])
    p.add_argument("--resize", type=int, default=128)
    p.add_argument("--crop-size", type=int, default=112)
    p.add_argument("--actors", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    p.add_argument("--gpu", action="store_true", help="GPU backbone actors")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "extract_speed.json"))
    args = p.parse_args()
    h, w = (int(x) for x in args.size.split("x"))
    cfg = config.load(overrides=[
        f"video.backbone={args.backbone}", f"video.width={args.width}", "video.random_weights=true",
        f"video.crops={args.crops}", f"video.resize={args.resize}", f"video.crop_size={args.crop_size}",
        f"video.actors={args.actors}", f"video.batch_size={args.batch_size}", f"video.use_gpu={str(args.gpu).lower()}",
        f"video.cpus_per_actor={1 if args.gpu else max(1, args.cpus // args.actors)}",
    ]).video
    with tempfile.TemporaryDirectory() as tmp:
        uris = []
        for i in range(args.videos):
            uris.append(os.path.join(tmp, f"v{i:03d}.mp4"))
            write_video(uris[-1], moving_shapes(args.frames, size=(h, w), seed=i, scene=i % 3,
                                                anomalies=[(args.frames // 3, args.frames // 2, "shape")]))
        rows: dict[str, tuple[int, float, float | None]] = {}  # name → (snippets, seconds, steady snippets/s)

        t0 = time.perf_counter()
        n = sum(1 for u in uris for _ in SnippetStream(u, cfg))
        rows["decode, in process"] = (n, time.perf_counter() - t0, None)

        import torch

        from omnivad.video.backbones import build_backbone

        torch.set_num_threads(int(cfg.cpus_per_actor) if not args.gpu else 1)
        model = build_backbone(cfg.backbone, cfg.width, random_weights=True).to("cuda" if args.gpu else "cpu")
        t0, n = time.perf_counter(), 0
        with torch.inference_mode():
            for u in uris:
                clips = [c for _, c in SnippetStream(u, cfg)]
                for b in range(0, len(clips), cfg.batch_size):
                    x = torch.from_numpy(np.stack(clips[b:b + cfg.batch_size])).to(next(model.parameters()).device)
                    model(x.flatten(0, 1).permute(0, 4, 1, 2, 3).float().div_(255.0)).cpu()
                n += len(clips)
        rows["decode + extract, in process"] = (n, time.perf_counter() - t0, None)
        del model

        import ray

        from omnivad.data.ray_datasets import quiet_progress
        from omnivad.video.extract import snippet_dataset

        ray.init(num_cpus=args.cpus, num_gpus=1 if args.gpu else 0, include_dashboard=False, log_to_driver=False)
        quiet_progress()
        for name, extract in (("decode, Ray Data", False), ("decode + extract, Ray Data", True)):
            t0 = time.perf_counter()
            n, first = 0, None
            for batch in snippet_dataset(uris, cfg, args.gpu, extract=extract).iter_batches(
                    batch_size=None, batch_format="numpy"):
                k = int((batch["index"] >= 0).sum())
                if first is None:  # everything before the first batch is start-up (workers, imports, model)
                    first, n_first = time.perf_counter(), k
                n += k
            end = time.perf_counter()
            steady = (n - n_first) / (end - first) if first is not None and end > first and n > n_first else None
            rows[name] = (n, end - t0, steady)
        ray.shutdown()
    base = rows["decode, in process"][0] / rows["decode, in process"][1]
    k = n_crops(cfg.crops)
    print(f"{args.videos} videos x {args.frames} frames ({h}x{w}) → {args.crop_size}px {args.crops} crop(s); "
          f"backbone {args.backbone} width {args.width} ({'GPU' if args.gpu else f'{args.cpus} CPUs'}, "
          f"{args.actors} actor(s), batch {args.batch_size}); load avg {os.getloadavg()[0]:.1f}")
    print(f"{'pipeline':<30} {'snippets':>8} {'seconds':>8} {'snippets/s':>11} {'clips/s':>8} {'vs decode':>9} "
          f"{'steady/s':>9} {'steady vs decode':>16}")
    out = {"args": vars(args), "rows": {}}
    for name, (n, dt, steady) in rows.items():
        rate = n / dt
        st = f"{steady:>9.1f} {steady / base:>16.2f}" if steady else f"{'-':>9} {'-':>16}"
        print(f"{name:<30} {n:>8} {dt:>8.2f} {rate:>11.1f} {rate * k:>8.1f} {rate / base:>9.2f} {st}")
        out["rows"][name] = {"snippets": n, "seconds": dt, "snippets_per_s": rate, "ratio_vs_decode": rate / base,
                             "steady_snippets_per_s": steady}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
