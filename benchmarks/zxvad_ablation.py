"""zxVAD vs its prediction-only ablation (``zxvad.use_nc=false``) on a synthetic source -> target pair.

`python benchmarks/zxvad_ablation.py [--size 32] [--iterations 200] [--seeds 0,1,2] [--kind fast] [--lr-n 1e-3]`

Source: normal videos of one scene (``omnivad.video.synth.moving_shapes``, scene 0). Target: another
scene (scene 1) whose test videos hold anomalies of ``--kind`` never seen in training. Both models get
the same data, seeds and iterations (no Ray); prints target frame AUC (per-video normalised PSNR, and
pooled raw PSNR) per seed and the mean difference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from omnivad.config import ZxVADConfig  # noqa: E402
from omnivad.video.synth import moving_shapes  # noqa: E402
from omnivad.zxvad.data import frame_labels, to_tensor  # noqa: E402
from omnivad.zxvad.score import frame_auc, video_psnr  # noqa: E402
from omnivad.zxvad.train import train_local  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--kind", default="fast", choices=["fast", "reverse", "shape"])
    p.add_argument("--lr-n", type=float, default=1e-3, help="N's learning rate (the paper: 2e-5, for 5k iterations)")
    a = p.parse_args()
    torch.set_num_threads(1)
    s = a.size
    source = [moving_shapes(30, (s, s), seed=i, scene=0) for i in range(4)]
    target = []
    for i in range(4):
        an = [(10, 22, a.kind)] if i < 3 else []
        target.append((moving_shapes(30, (s, s), seed=100 + i, scene=1, anomalies=an), frame_labels(30, [(x, y) for x, y, _ in an])))
    base = dict(frame_size=(s, s), base_channels=8, memory_items=50, disc_channels=(16, 32, 32, 32), r_layer="layer2",
                batch_size=8, lr_n=a.lr_n, lr_d=2e-4)
    print("| seed | zxVAD AUC | pred-only AUC | zxVAD AUC (raw PSNR) | pred-only AUC (raw PSNR) | s zxVAD | s pred-only |")
    print("|---|---|---|---|---|---|---|")
    diffs = []
    for seed in [int(x) for x in a.seeds.split(",")]:
        row = {}
        for nc in (True, False):
            t0 = time.perf_counter()
            model = train_local(ZxVADConfig(**base, use_nc=nc, seed=seed), source, iterations=a.iterations)
            ps = [video_psnr(model.g, to_tensor(f), 4) for f, _ in target]
            ys = [y for _, y in target]
            row[nc] = (frame_auc(ps, ys, 4)["auc"], frame_auc(ps, ys, 4, per_video_norm=False)["auc"], time.perf_counter() - t0)
        diffs.append(row[True][0] - row[False][0])
        print(f"| {seed} | {100 * row[True][0]:.2f} | {100 * row[False][0]:.2f} | {100 * row[True][1]:.2f} | "
              f"{100 * row[False][1]:.2f} | {row[True][2]:.1f} | {row[False][2]:.1f} |", flush=True)
    d = np.array(diffs) * 100
    print(f"\nzxVAD - pred-only (AUC points, per-video normalised): mean {d.mean():+.2f}, std {d.std():.2f}, "
          f"wins {(d > 0).sum()}/{len(d)}")


if __name__ == "__main__":
    main()
