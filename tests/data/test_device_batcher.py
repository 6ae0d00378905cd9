"""The device-side sampler (pools on the training device) draws exactly the host sampler's batches for a seed:
same videos, same order, same crop padding and mask, labels, domains and side signals (checked on CPU; on a GPU
the same code gathers there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnivad.data.balanced import BalancedBatcher, DeviceBatcher, Pool


def _pools(seed: int) -> dict[tuple[str, int], Pool]:
    rng = np.random.default_rng(seed)
    pools = {}
    for d, (k, n) in {"A": (1, 7), "B": (3, 5), "C": (2, 11)}.items():  # crops differ by domain: padding matters
        for y in (0, 1):
            m = n + y
            side = {"flow": rng.random((m, 4), dtype=np.float32)}
            pools[(d, y)] = Pool([f"{d}{y}{i:02d}" for i in range(m)], rng.standard_normal((m, 4, k, 3)).astype(np.float32), side)
    return pools


@pytest.mark.parametrize("rank, world, use_all", [(0, 1, False), (1, 2, False), (0, 1, True)])
def test_device_batcher_draws_the_host_batches(rank: int, world: int, use_all: bool) -> None:
    pools = _pools(3)
    args = (pools, ["A", "B", "C"], {"A": 0, "B": 1, "C": -1}, 8, 5, rank, world, use_all)
    host, dev = BalancedBatcher(*args), DeviceBatcher(*args, device="cpu")
    for step in [0, 1, 2, 7, 3, 40]:  # a jump back (restart) and forward
        a, b = host.batch(step), dev.batch(step)
        assert b.x.device.type == "cpu" and a.x.shape == b.x.shape
        assert torch.equal(a.x, b.x) and torch.equal(a.mask, b.mask)
        assert torch.equal(a.y, b.y) and a.y.dtype == b.y.dtype and torch.equal(a.dom, b.dom)
        assert a.side is not None and b.side is not None and a.side.keys() == b.side.keys()
        assert all(torch.equal(a.side[k], b.side[k]) for k in a.side)


def test_device_batcher_pads_to_the_batch_not_the_corpus() -> None:
    """2 videos per class over 3 domains: some steps draw no 3-crop video and pad to 2 crops, as the host does."""
    args = (_pools(1), ["A", "B", "C"], {"A": 0, "B": 1, "C": 2}, 2, 0)
    host, dev = BalancedBatcher(*args), DeviceBatcher(*args)
    widths = set()
    for step in range(6):
        a, b = host.batch(step), dev.batch(step)
        assert torch.equal(a.x, b.x) and torch.equal(a.mask, b.mask) and torch.equal(a.dom, b.dom)
        widths.add(b.x.shape[1])
    assert widths == {2, 3}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_device_batcher_on_gpu() -> None:
    pools = _pools(0)
    args = (pools, ["A", "B", "C"], {"A": 0, "B": 1, "C": 2}, 8, 5)
    b = DeviceBatcher(*args, device="cuda").batch(3)
    assert b.x.is_cuda and torch.equal(b.x.cpu(), BalancedBatcher(*args).batch(3).x)
