"""Batch composition on a worker: equal videos per domain, equal normal/abnormal per domain.

Sampling is a pure function of ``(seed, rank, step)``: every (domain, label) pool is an endless
sequence of seeded permutations ("short pools cycle"), and the position a step starts at is the number
of draws made by the steps before it. A run restarted from a checkpoint at step ``s`` therefore sees
exactly the batches an uninterrupted run would have seen.

:class:`DeviceBatcher` draws the same videos (the same :meth:`BalancedBatcher.draws`) from pools kept on the
training device (a GPU): a step gathers there, and only the draw indices cross from the host.
"""

from __future__ import annotations

import numpy as np
import torch

from omnivad.data.pools import Pool
from omnivad.data.batch import Batch

__all__ = ["BalancedBatcher", "DeviceBatcher", "Pool", "per_domain_counts", "pool_indices", "worker_share"]


def per_domain_counts(step: int, n_domains: int, per_class: int) -> list[int]:
    """Videos per domain (per class) at ``step``: ⌊B/M⌋ each, the B mod M extras rotating (MDVAD A10)."""
    base, extra = divmod(per_class, n_domains)
    return [base + int((d - step) % n_domains < extra) for d in range(n_domains)]


def worker_share(count: int, rank: int, world: int) -> int:
    """This worker's part of ``count`` videos when the global batch is split over ``world`` workers."""
    base, extra = divmod(count, world)
    return base + int(rank < extra)


def pool_indices(n: int, key: tuple[int, ...], start: int, count: int) -> np.ndarray:
    """Positions ``start .. start+count-1`` of the endless permutation sequence of a pool of ``n``."""
    out = np.empty(count, dtype=np.int64)
    pos = start
    filled = 0
    while filled < count:
        epoch, offset = divmod(pos, n)
        perm = np.random.default_rng((*key, epoch)).permutation(n)
        take = min(count - filled, n - offset)
        out[filled : filled + take] = perm[offset : offset + take]
        filled += take
        pos += take
    return out


class BalancedBatcher:
    """Draws :class:`Batch` es from per-(domain, label) pools.

    ``domains`` is the order of training domains in the batch; ``head_index`` maps a domain to its head
    index in the model (-1 for a domain the model has no head for).
    """

    def __init__(
        self,
        pools: dict[tuple[str, int], Pool],
        domains: list[str],
        head_index: dict[str, int],
        per_class: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        use_all: bool = False,
    ) -> None:
        for d in domains:
            for label in (0, 1):
                if (d, label) not in pools or len(pools[(d, label)].ids) == 0:
                    kind = "abnormal" if label else "normal"
                    raise ValueError(f"domain {d!r}: no {kind} training videos on worker {rank}")
        self.pools = pools
        self.domains = domains
        self.head_index = head_index
        self.per_class = per_class
        self.seed = seed
        self.rank = rank
        self.world = world
        self.use_all = use_all  # E3: every video of the (small) pools in every step
        self._pos_step = 0
        self._pos = {(d, y): 0 for d in domains for y in (0, 1)}

    def _counts(self, step: int) -> list[int]:
        return [worker_share(c, self.rank, self.world) for c in per_domain_counts(step, len(self.domains), self.per_class)]

    def _seek(self, step: int) -> None:
        if step < self._pos_step:
            self._pos_step = 0
            self._pos = {k: 0 for k in self._pos}
        while self._pos_step < step:
            for d, c in zip(self.domains, self._counts(self._pos_step)):
                for y in (0, 1):
                    self._pos[(d, y)] += c
            self._pos_step += 1

    def draws(self, step: int) -> list[tuple[tuple[str, int], np.ndarray]]:
        """Step ``step``'s videos: ``((domain, label), positions in that pool)`` in batch order."""
        if self.use_all:
            return [((d, y), np.arange(len(self.pools[(d, y)].ids))) for d in self.domains for y in (0, 1)]
        self._seek(step)
        out = []
        for di, (d, c) in enumerate(zip(self.domains, self._counts(step))):
            for y in (0, 1):
                idx = pool_indices(len(self.pools[(d, y)].ids), (self.seed, self.rank, di, y), self._pos[(d, y)], c)
                out.append(((d, y), idx))
        return out

    def batch(self, step: int) -> Batch:
        xs: list[np.ndarray] = []
        ys: list[int] = []
        doms: list[int] = []
        sides: list[dict[str, np.ndarray]] = []  # one entry per pool drawn from (side signals of the drawn videos)
        for (d, y), idx in self.draws(step):
            pool = self.pools[(d, y)]
            xs.extend(pool.x[idx])
            ys.extend([y] * len(idx))
            doms.extend([self.head_index[d]] * len(idx))
            sides.append({k: v[idx] for k, v in pool.side.items()})
        return _stack(xs, ys, doms, sides)


class DeviceBatcher(BalancedBatcher):
    """:class:`BalancedBatcher` with its pools on ``device``: the same batches for the same seed, gathered on the
    device (pools stacked once as ``(n, Kmax, T, C)``, crops padded with crop 0 as :func:`_stack` does)."""

    def __init__(self, pools: dict[tuple[str, int], Pool], domains: list[str], head_index: dict[str, int],
                 per_class: int, seed: int, rank: int = 0, world: int = 1, use_all: bool = False,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(pools, domains, head_index, per_class, seed, rank, world, use_all)
        self.device = torch.device(device)
        keys = [(d, y) for d in domains for y in (0, 1)]
        kmax = max(pools[k].x.shape[2] for k in keys)
        self._crops = {k: np.full(len(pools[k].ids), pools[k].x.shape[2]) for k in keys}
        self._on_device: dict[tuple[str, int], Batch] = {}
        for k in keys:
            b = _stack(list(pools[k].x), [k[1]] * len(pools[k].ids), [head_index[k[0]]] * len(pools[k].ids),
                       [pools[k].side])
            pad = kmax - b.x.shape[1]
            if pad:
                b.x = torch.cat([b.x, b.x[:, :1].expand(-1, pad, -1, -1)], 1)
                b.mask = torch.cat([b.mask, torch.zeros(len(b.mask), pad, dtype=torch.bool)], 1)
            self._on_device[k] = b.to(self.device)

    def batch(self, step: int) -> Batch:
        parts, kmax = [], 1
        for key, idx in self.draws(step):
            kmax = max(kmax, int(self._crops[key][idx].max(initial=1)))
            at = torch.from_numpy(idx).to(self.device, non_blocking=True)
            p = self._on_device[key]
            side = {n: v.index_select(0, at) for n, v in p.side.items()} if p.side is not None else {}
            parts.append((p.x.index_select(0, at), p.mask.index_select(0, at), p.y.index_select(0, at),
                          p.dom.index_select(0, at), side))
        common = set.intersection(*(set(s) for *_, s in parts)) if parts else set()
        return Batch(
            x=torch.cat([q[0] for q in parts])[:, :kmax],
            mask=torch.cat([q[1] for q in parts])[:, :kmax],
            y=torch.cat([q[2] for q in parts]),
            dom=torch.cat([q[3] for q in parts]),
            side={n: torch.cat([q[4][n] for q in parts]) for n in sorted(common)} or None,
        )


def _stack_side(sides: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor] | None:
    """Side signals every drawn pool has, concatenated in batch order; None when no signal is common."""
    common = set.intersection(*(set(s) for s in sides)) if sides else set()
    if not common:
        return None
    return {k: torch.from_numpy(np.concatenate([s[k] for s in sides]).astype(np.float32, copy=False)) for k in sorted(common)}


def _stack(xs: list[np.ndarray], ys: list[int], doms: list[int], sides: list[dict[str, np.ndarray]] | None = None) -> Batch:
    """Stack ``(T, K_i, C)`` videos into ``(B, Kmax, T, C)``, padding crops with crop 0 (masked)."""
    kmax = max(x.shape[1] for x in xs)
    t, _, c = xs[0].shape
    out = np.empty((len(xs), kmax, t, c), dtype=np.float32)
    mask = np.zeros((len(xs), kmax), dtype=bool)
    for i, x in enumerate(xs):
        k = x.shape[1]
        out[i, :k] = x.transpose(1, 0, 2)
        out[i, k:] = x[:, 0][None]
        mask[i, :k] = True
    return Batch(
        x=torch.from_numpy(out),
        mask=torch.from_numpy(mask),
        y=torch.tensor(ys, dtype=torch.float32),
        dom=torch.tensor(doms, dtype=torch.int64),
        side=_stack_side(sides or []),
    )
