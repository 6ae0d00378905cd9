"""zxVAD inference efficiency (spec §7.2, paper Table 3): parameters, storage, GMACs and FPS of G.

`python benchmarks/zxvad_efficiency.py [--size 256] [--frames 5] [--threads N] [--gpu]`

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2; convolutions, transposed
convolutions and the memory's matrix products) on one 1 x 12 x H x W input. FPS: one predicted frame per
forward at batch size 1, after one warm-up. The baseline, measured in the same run, is the same U-Net
without the memory module (Liu et al.'s predictor); the ratios show the memory's cost.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from omnivad.zxvad.model import Generator, count_parameters  # noqa: E402

PAPER = {"params_M": 8.73, "storage_MB": 34.92, "GMACs": 43.10, "FPS (GPU)": 208.5}


def measure(g: torch.nn.Module, size: int, frames: int, device: str) -> dict[str, float]:
    g = g.to(device).eval()
    x = torch.rand(1, 12, size, size, device=device) * 2 - 1
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        g(x)
    buf = io.BytesIO()
    torch.save({k: v for k, v in g.state_dict().items() if v.is_floating_point() and "running" not in k}, buf)
    with torch.no_grad():
        g(x)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(frames):
            g(x)
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    return {"params_M": count_parameters(g) / 1e6, "storage_MB": count_parameters(g) * 4 / 1e6,
            "file_MB": len(buf.getvalue()) / 1e6, "GMACs": fc.get_total_flops() / 2 / 1e9, "FPS": frames / dt}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="frame side (the paper: 256)")
    p.add_argument("--frames", type=int, default=5, help="timed forwards")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--gpu", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = "cuda" if a.gpu and torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    rows = {"zxVAD G (U-Net + memory)": measure(Generator(), a.size, a.frames, device),
            "baseline: U-Net, no memory": measure(Generator(use_memory=False), a.size, a.frames, device)}
    z, b = rows["zxVAD G (U-Net + memory)"], rows["baseline: U-Net, no memory"]
    print(f"device {device}, {torch.get_num_threads()} threads, input 1x12x{a.size}x{a.size}, batch 1\n")
    print(f"| model | params (M) | storage (MB, fp32 params) | state file (MB) | GMACs | FPS |\n|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['params_M']:.3f} | {r['storage_MB']:.2f} | {r['file_MB']:.2f} | {r['GMACs']:.2f} | {r['FPS']:.2f} |")
    print(f"| paper Table 3 (zxVAD) | {PAPER['params_M']} | {PAPER['storage_MB']} | - | {PAPER['GMACs']} | {PAPER['FPS (GPU)']} (GPU) |")
    print(f"\nratios zxVAD / baseline: params {z['params_M'] / b['params_M']:.3f}, GMACs {z['GMACs'] / b['GMACs']:.3f}, "
          f"FPS {z['FPS'] / b['FPS']:.3f}")


if __name__ == "__main__":
    main()
