"""GPU training step at the papers' sizes: ms/step, achieved FLOP/s as a share of the device's bf16 peak, and
scaling over 1..N workers when N GPUs are present. Without a GPU it says so and exits 0.

* **MDVAD** (``nullang-mil``): 64 videos (32 normal + 32 abnormal) × 10 crops × 32 snippets, C = 2048;
* **BN-WVAD**: 64 videos × 10 crops × 200 snippets, C = 1024 (``--bn-crops`` to change the crops).

The batch is drawn on the device (``data.balanced.DeviceBatcher``: no per-step host copy), the step is the shared
one (``engine.train_loop.train_step``) with ``train.precision`` (default bf16) and optionally ``train.compile``;
Adam is fused (``engine.harness.build_optimizer``). FLOPs of one step are counted once with
``torch.utils.flop_counter.FlopCounterMode``; the peak comes from :data:`PEAK_BF16_TFLOPS` by device name
(dense bf16, no sparsity). Scaling: ``--workers`` processes (one per GPU, NCCL DDP, the same per-worker batch),
reported as samples/s and the efficiency against N × one worker.

    python benchmarks/gpu_step.py [--precision bf16|fp32] [--compile] [--steps 20] [--workers N] [--methods ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

try:
    import omnivad  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: Dense bf16 tensor-core peak, TFLOP/s, by a substring of ``torch.cuda.get_device_name`` (first match wins).
PEAK_BF16_TFLOPS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("B200", 2250.0),
                    ("A100", 312.0), ("A10G", 70.0), ("A10", 125.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
                    ("RTX 4090", 165.0), ("A6000", 155.0), ("V100", 125.0), ("T4", 65.0)]
SIZES = {"nullang-mil": {"C": 2048, "K": 10, "T": 32}, "bn-wvad": {"C": 1024, "K": 10, "T": 200}}


def peak_tflops(name: str) -> float | None:
    return next((p for key, p in PEAK_BF16_TFLOPS if key in name), None)


def _setup(name: str, size: dict[str, int], precision: str, compile_: bool, device: torch.device) -> tuple[Any, ...]:
    from omnivad import config
    from omnivad.data.balanced import DeviceBatcher, Pool
    from omnivad.engine.harness import build_optimizer, compile_model
    from omnivad.engine.spec import RunSpec
    from omnivad.methods.registry import get_method

    cfg = config.load(overrides=[f"model.method={name}", f"train.precision={precision}", f"train.compile={compile_}",
                                 "data.batch_per_class=32"])
    method = get_method(name)
    rng = np.random.default_rng(0)
    pools = {("A", y): Pool([f"v{y}{i}" for i in range(48)],
                            rng.standard_normal((48, size["T"], size["K"], size["C"]), dtype=np.float32)) for y in (0, 1)}
    batcher = DeviceBatcher(pools, ["A"], {"A": 0}, 32, 0, device=device)
    torch.manual_seed(0)
    model = compile_model(method.build(cfg, ["A"], size["C"]).to(device), cfg.train.compile)
    spec = RunSpec(name="gpu", corpus_uri="-", train={"A": []}, head_domains=["A"], steps=1)
    return cfg, method, model, build_optimizer(model.parameters(), "adam", 1e-5), batcher, spec


def step_flops(name: str, size: dict[str, int], precision: str, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from omnivad.engine.train_loop import train_step

    cfg, method, model, opt, batcher, spec = _setup(name, size, precision, False, device)
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(method, model, opt, batcher.batch(0), cfg, spec)
    return float(counter.get_total_flops())


def time_steps(name: str, size: dict[str, int], precision: str, compile_: bool, steps: int,
               device: torch.device, model_wrap: Any = None) -> float:
    """Median-free mean ms/step over ``steps`` after 3 warm-up steps (CUDA-synchronised)."""
    from omnivad.engine.train_loop import train_step

    cfg, method, model, opt, batcher, spec = _setup(name, size, precision, compile_, device)
    net = model_wrap(model) if model_wrap else model
    for s in range(3):
        train_step(method, net, opt, batcher.batch(s), cfg, spec)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for s in range(steps):
        train_step(method, net, opt, batcher.batch(3 + s), cfg, spec)
    torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps * 1e3


def _ddp_worker(rank: int, world: int, name: str, size: dict[str, int], args: Any, out: Any) -> None:
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=rank, world_size=world)
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    from omnivad.methods.registry import get_method

    unused = get_method(name).find_unused_parameters

    def wrap(m: torch.nn.Module) -> torch.nn.Module:
        return torch.nn.parallel.DistributedDataParallel(m, device_ids=[rank], find_unused_parameters=unused)

    ms = time_steps(name, size, args.precision, args.compile, args.steps, device, wrap)
    if rank == 0:
        out.put(ms)
    dist.destroy_process_group()


def scaling(name: str, size: dict[str, int], args: Any, world: int) -> float:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    mp.spawn(_ddp_worker, args=(world, name, size, args, q), nprocs=world, join=True)
    return float(q.get())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--workers", type=int, default=None, help="scale over 1..N GPUs (default: all present)")
    ap.add_argument("--methods", default="nullang-mil,bn-wvad")
    ap.add_argument("--bn-crops", type=int, default=10)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_step: no CUDA device here (torch.cuda.is_available() is False); nothing to measure")
        return 0
    device = torch.device("cuda", 0)
    gpu = torch.cuda.get_device_name(device)
    peak = peak_tflops(gpu)
    n_gpus = min(args.workers or torch.cuda.device_count(), torch.cuda.device_count())
    print(f"device: {gpu} x{torch.cuda.device_count()}, bf16 dense peak "
          f"{f'{peak:.0f} TFLOP/s' if peak else 'unknown (not in PEAK_BF16_TFLOPS)'}; torch {torch.__version__}; "
          f"precision {args.precision}, compile {args.compile}")
    fracs = []
    for name in args.methods.split(","):
        size = dict(SIZES[name])
        if name == "bn-wvad":
            size["K"] = args.bn_crops
        flops = step_flops(name, size, args.precision, device)
        ms = time_steps(name, size, args.precision, args.compile, args.steps, device)
        achieved = flops / (ms / 1e3) / 1e12
        frac = achieved / peak if peak else float("nan")
        fracs.append(frac)
        print(f"{name:12s} 64 videos x {size['K']} crops x {size['T']} snippets C={size['C']}: {ms:.1f} ms/step, "
              f"{flops / 1e9:.1f} GFLOP/step, {achieved:.1f} TFLOP/s = {100 * frac:.1f}% of peak", flush=True)
        for world in range(2, n_gpus + 1):
            ms_n = scaling(name, size, args, world)
            print(f"{name:12s} {world} GPUs (DDP, NCCL): {ms_n:.1f} ms/step, efficiency {ms / ms_n:.2f} "
                  f"(1.00 = perfect weak scaling)", flush=True)
    print(f"ratio: {min(fracs):.3f}  (achieved / peak bf16, worst method)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
