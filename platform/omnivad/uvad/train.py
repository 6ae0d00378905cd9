"""Training and scoring steps of the two models, shared by the local and the Ray executor.

Each function works on numpy arrays of what one process holds (all data locally, one shard on a Ray
Train worker); the model may be wrapped in DistributedDataParallel, whose gradient all-reduce then
averages the steps over workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from omnivad.engine.harness import build_optimizer
from omnivad.uvad.occ import weighted_occ_loss
from omnivad.uvad.ws import CropMean, make_bags, ws_loss


def occ_epochs(model: nn.Module, opt: torch.optim.Optimizer, x: np.ndarray, w: np.ndarray, cfg: Any, seed: int,
               steps: int | None = None, device: str | torch.device = "cpu") -> list[float]:
    """Eq. 2 for ``cfg.occ_epochs`` epochs over (x, w) in shuffled batches; gradients clipped (§3.1).

    ``model`` is an :class:`ObjectLoss` (possibly DDP-wrapped).
    ``steps`` fixes the number of batches per epoch (Ray workers must agree on it)."""
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    n = len(x)
    per_epoch = steps if steps is not None else max(1, -(-n // cfg.occ_batch))
    for _ in range(cfg.occ_epochs):
        order = rng.permutation(n) if n else np.zeros(0, np.int64)
        for b in range(per_epoch):
            idx = order[(b * cfg.occ_batch) % max(n, 1) :][: cfg.occ_batch] if n else order
            xb = torch.from_numpy(x[idx]).to(device)
            wb = torch.from_numpy(np.asarray(w[idx], np.float32)).to(device)
            loss = weighted_occ_loss(model(xb), wb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
    return losses


class ObjectLoss(nn.Module):
    """``forward(x) = model.object_loss(x)``: DDP syncs gradients only through ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.object_loss(x)


@torch.no_grad()
def data_init(model: nn.Module, x: np.ndarray, batch: int) -> None:
    """Run one training-mode forward so data-dependent layers (ActNorm) initialise once, before any
    copy of the model is made (Ray workers must start from identical weights)."""
    if len(x):
        model.train()
        model.object_loss(torch.from_numpy(x[:batch]))


@torch.no_grad()
def score_objects(model: nn.Module, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """a_i of every object (eval mode), (M,) float64."""
    model.eval()
    out = [model.object_loss(torch.from_numpy(x[i : i + batch])).double().numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros(0)


class BagCursor:
    """Bags in a random order, reshuffled (from ``rng``) each time they run out."""

    def __init__(self, bags: np.ndarray, rng: np.random.Generator) -> None:
        self.bags, self.perm, self.at = bags, rng.permutation(len(bags)), 0

    def take(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = []
        for _ in range(n):
            if self.at >= len(self.perm):
                self.perm, self.at = rng.permutation(len(self.bags)), 0
            out.append(self.bags[self.perm[self.at]])
            self.at += 1
        return np.stack(out)


def ws_iterations(model: nn.Module, kind: str, x: np.ndarray, labels: np.ndarray, ahat: np.ndarray, cfg: Any,
                  seed: int, iters: int | None = None, device: str | torch.device = "cpu") -> list[float]:
    """One WS "epoch" (§9.7): ``ws_iters`` iterations of ``ws_batch`` positive + negative bags, fresh Adam.

    ``x``: the snippets' crop means (N, C) or every crop (N, K, C) (``uvad.ws_input``); bags are then
    (B, L, C) or (B, K, L, C)."""
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"WS pseudo-labels: {len(pos)} abnormal and {len(neg)} normal snippets; need both")
    anchored = cfg.bags == "anchored"
    bags_p = make_bags(pos, ahat[pos], cfg.bag_size, rng, anchored)
    bags_n = make_bags(neg, ahat[neg], cfg.bag_size, rng, anchored)
    opt = build_optimizer(model.parameters(), "adam", cfg.ws_lr, cfg.ws_weight_decay)
    loss_fn = ws_loss(kind)
    net = CropMean(model) if x.ndim == 3 and kind != "rtfm" else model
    model.train()
    xt = torch.from_numpy(x).to(device)
    losses = []
    bags_pos, bags_neg = BagCursor(bags_p, rng), BagCursor(bags_n, rng)
    for _ in range(iters if iters is not None else cfg.ws_iters):
        bp = torch.from_numpy(bags_pos.take(cfg.ws_batch, rng)).to(device)
        bn = torch.from_numpy(bags_neg.take(cfg.ws_batch, rng)).to(device)
        pos, neg = (xt[bp], xt[bn]) if x.ndim == 2 else (xt[bp].transpose(1, 2), xt[bn].transpose(1, 2))
        loss, _ = loss_fn(net, pos, neg, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def score_videos(model: nn.Module, x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """s_j of every snippet: the WS model run on each whole video, (N,) float64; ``x`` (N, C), or (N, K, C) with
    every crop, each crop run as its own sequence and the scores averaged over crops (§1.4)."""
    model.eval()
    out = np.zeros(int(offsets[-1]))
    for a, b in zip(offsets[:-1], offsets[1:]):
        if b > a:
            v = torch.from_numpy(x[a:b])
            s, _ = model(v[None] if v.dim() == 2 else v.transpose(0, 1).contiguous())
            out[a:b] = s.mean(0).double().numpy()
    return out
