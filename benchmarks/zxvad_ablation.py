"""zxVAD vs its prediction-only ablation (``zxvad.use_nc=false``) on a synthetic source -> target pair.

`python benchmarks/zxvad_ablation.py [--size 32] [--iterations 200] [--seeds 0,1,2] [--kind fast]
[--donors source|ti] [--variants zxvad,zxvad-pp,pred] [--sources 4] [--videos 6] [--base-channels 8] [--lr-n 1e-3]`

Source: normal videos of one scene (``omnivad.video.synth.moving_shapes``, scene 0). Target: another
scene (scene 1) whose test videos hold anomalies of ``--kind`` never seen in training (one video in
``--videos`` stays normal). Donors for the pseudo-anomalies: the source (the paper's "VAD only") or
task-irrelevant patterned patches (``textured_objects``, "VAD + TI"). Variants: ``zxvad`` (the paper:
pastes into G's real input frames), ``zxvad-pp`` (``zxvad.paste_base=prediction``), ``pred`` (no N,
no O). Every variant gets the same data, seeds and iterations (no Ray). Prints target frame AUC
(per-video normalised PSNR, the protocol; pooled raw PSNR in brackets) per seed, then each variant's
mean ± std and its paired difference from ``pred`` (mean ± std over seeds, wins).
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
from omnivad.video.synth import ANOMALY_KINDS, moving_shapes, textured_objects  # noqa: E402
from omnivad.zxvad.data import frame_labels, to_tensor  # noqa: E402
from omnivad.zxvad.score import frame_auc, video_psnr  # noqa: E402
from omnivad.zxvad.train import train_local  # noqa: E402

VARIANTS = {"zxvad": {"use_nc": True}, "zxvad-pp": {"use_nc": True, "paste_base": "prediction"}, "pred": {"use_nc": False}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--kind", default="fast", choices=ANOMALY_KINDS)
    p.add_argument("--donors", default="source", choices=["source", "ti"])
    p.add_argument("--variants", default="zxvad,zxvad-pp,pred")
    p.add_argument("--videos", type=int, default=6, help="target videos (all but one hold an anomaly)")
    p.add_argument("--sources", type=int, default=4, help="normal source videos (30 frames each)")
    p.add_argument("--base-channels", type=int, default=8)
    p.add_argument("--lr-n", type=float, default=1e-3, help="N's learning rate (the paper: 2e-5, for 5k iterations)")
    a = p.parse_args()
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            p.error(f"--variants: {v!r} not in {sorted(VARIANTS)}")
    torch.set_num_threads(1)
    s, n = a.size, 30
    source = [moving_shapes(n, (s, s), seed=i, scene=0) for i in range(a.sources)]
    donors = [textured_objects(8, (s, s), seed=i) for i in range(4)] if a.donors == "ti" else None
    target = []
    for i in range(a.videos):
        an = [(10, 22, a.kind)] if i < a.videos - 1 else []
        target.append((moving_shapes(n, (s, s), seed=100 + i, scene=1, anomalies=an), frame_labels(n, [(x, y) for x, y, _ in an])))
    base = dict(frame_size=(s, s), base_channels=a.base_channels, memory_items=50, disc_channels=(16, 32, 32, 32),
                r_layer="layer2", batch_size=8, lr_n=a.lr_n, lr_d=2e-4)
    print(f"kind={a.kind} donors={a.donors} size={s} iterations={a.iterations} sources={a.sources} videos={a.videos} "
          f"base_channels={a.base_channels}")
    print("| seed | " + " | ".join(f"{v} AUC (raw PSNR)" for v in variants) + " | s per variant |")
    print("|---" * (len(variants) + 2) + "|")
    aucs: dict[str, list[float]] = {v: [] for v in variants}
    for seed in [int(x) for x in a.seeds.split(",")]:
        cells, secs = [], []
        for v in variants:
            t0 = time.perf_counter()
            model = train_local(ZxVADConfig(**base, **VARIANTS[v], seed=seed), source, donors=donors, iterations=a.iterations)
            ps = [video_psnr(model.g, to_tensor(f), 4) for f, _ in target]
            ys = [y for _, y in target]
            auc, raw = frame_auc(ps, ys, 4)["auc"], frame_auc(ps, ys, 4, per_video_norm=False)["auc"]
            aucs[v].append(100 * auc)
            cells.append(f"{100 * auc:.2f} ({100 * raw:.2f})")
            secs.append(f"{time.perf_counter() - t0:.0f}")
        print(f"| {seed} | " + " | ".join(cells) + f" | {'/'.join(secs)} |", flush=True)
    print()
    for v in variants:
        x = np.array(aucs[v])
        line = f"{v}: AUC {x.mean():.2f} ± {x.std():.2f}"
        if v != "pred" and "pred" in aucs:
            d = x - np.array(aucs["pred"])
            line += f"; minus pred: {d.mean():+.2f} ± {d.std():.2f} AUC points, wins {(d > 0).sum()}/{len(d)}"
        print(line)


if __name__ == "__main__":
    main()
