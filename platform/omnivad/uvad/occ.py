"""wOCC models (spec wocc_ws.md §3.1, §8): a feature autoencoder, a feature normalising flow and STG-NF.

Every model exposes ``object_loss(x) -> (B,)``: the per-object one-class loss (reconstruction error or
NLL in bits per dimension), which is also its anomaly score a_i. The weighted one-class objective
(Eq. 2) is :func:`weighted_occ_loss`, shared by all of them.

Shapes: feature objects are ``(B, C)`` snippet features; pose objects are ``(B, 2, T, V)`` windows of
``T = seg_len`` frames and ``V = 18`` joints (x, y).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LN2 = math.log(2.0)


def weighted_occ_loss(obj_loss: torch.Tensor, w: torch.Tensor, drop_zero: bool = True) -> torch.Tensor:
    """Eq. 2: mean_i (1 - w_i) * loss_i over objects with w_i the soft anomaly label in [0, 1].

    With ``drop_zero`` (the code's reduction, §9.3) entries whose weighted loss is exactly 0 are left out
    of the mean; a batch with only such entries gives a zero loss that still has a graph.
    """
    wl = (1.0 - w.to(obj_loss.dtype)) * obj_loss
    if drop_zero:
        keep = wl != 0
        if not bool(keep.any()):
            return wl.sum() * 0.0
        return wl[keep].mean()
    return wl.mean()


# ---------------------------------------------------------------------------------------------- AE (§8)
class FeatureAE(nn.Module):
    """FC autoencoder over snippet features (GCL's generator shape); a_i = mean squared reconstruction error."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        h2 = max(2, hidden // 2)
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, h2), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(h2, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def object_loss(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) -> (B,) reconstruction error ||x - AE(x)||^2 / C."""
        return ((x - self(x)) ** 2).mean(-1)


# ---------------------------------------------------------------------------------------------- flows
class ActNorm(nn.Module):
    """Per-channel affine normalisation with data-dependent initialisation (Glow). ``dims``: channel axis 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialised", torch.tensor(0, dtype=torch.uint8))

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not bool(self.initialised) and self.training:
            with torch.no_grad():
                dims = [d for d in range(x.dim()) if d != 1]
                mean = x.mean(dim=dims)
                std = x.std(dim=dims).clamp(min=1e-6)
                self.loc.data.copy_(-mean)
                self.log_scale.data.copy_(-torch.log(std))
                self.initialised.fill_(1)
        y = (x + self._view(self.loc, x)) * torch.exp(self._view(self.log_scale, x))
        per_channel = int(np.prod(x.shape[2:])) if x.dim() > 2 else 1
        logdet = self.log_scale.sum() * per_channel
        return y, logdet.expand(x.shape[0])


class AffineCoupling(nn.Module):
    """Glow affine coupling: the second half of the channels is scaled/shifted by a net of the first half."""

    def __init__(self, net: nn.Module, split: int) -> None:
        super().__init__()
        self.net = net
        self.split = split

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, : self.split], x[:, self.split :]
        h = self.net(xa)
        shift, raw = h.chunk(2, dim=1)
        scale = torch.sigmoid(raw + 2.0)
        yb = (xb + shift) * scale
        logdet = torch.log(scale).flatten(1).sum(1)
        return torch.cat([xa, yb], dim=1), logdet


def _zero_last(layer: nn.Module) -> nn.Module:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class _Flow(nn.Module):
    """K steps of ActNorm → reverse channel permutation → affine coupling; prior N(R·1, I)."""

    def __init__(self, channels: int, coupling_nets: list[nn.Module], prior_mean: float) -> None:
        super().__init__()
        self.channels = channels
        self.prior_mean = float(prior_mean)
        split = channels // 2
        self.norms = nn.ModuleList(ActNorm(channels) for _ in coupling_nets)
        self.couplings = nn.ModuleList(AffineCoupling(n, split) for n in coupling_nets)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for norm, coupling in zip(self.norms, self.couplings):
            x, ld = norm(x)
            logdet = logdet + ld
            x = x.flip(1)  # the fixed "reverse" permutation
            x, ld = coupling(x)
            logdet = logdet + ld
        return x, logdet

    def object_loss(self, x: torch.Tensor) -> torch.Tensor:
        """NLL in bits per dimension, (B,): -[log p_Z(f(x)) + log|det|] / (ln2 · D)."""
        z, logdet = self(x)
        d = z[0].numel()
        log_pz = (-0.5 * ((z - self.prior_mean) ** 2 + math.log(2 * math.pi))).flatten(1).sum(1)
        return -(log_pz + logdet) / (LN2 * d)


class FeatureFlow(_Flow):
    """A RealNVP/Glow flow over snippet feature vectors (B, C); a_i = NLL in bits/dim."""

    def __init__(self, dim: int, hidden: int = 128, steps: int = 8, prior_mean: float = 0.0) -> None:
        if dim < 2:
            raise ValueError(f"feature flow: expected feature dim >= 2, got {dim}")
        a, b = dim // 2, dim - dim // 2
        nets = [nn.Sequential(nn.Linear(a, hidden), nn.ReLU(), _zero_last(nn.Linear(hidden, 2 * b))) for _ in range(steps)]
        super().__init__(dim, nets, prior_mean)


# ---------------------------------------------------------------------------------------------- STG-NF (§3.1)
#: COCO-18 skeleton (after :func:`omnivad.corpus.poses.coco17_to_coco18`): neck = 1.
COCO18_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
                (11, 12), (12, 13), (0, 14), (14, 16), (0, 15), (15, 17)]


def uniform_adjacency(v: int = 18, max_hops: int = 8, edges: list[tuple[int, int]] | None = None) -> torch.Tensor:
    """ST-GCN "uniform" partition: joints within ``max_hops`` are neighbours, row-normalised, (V, V)."""
    edges = COCO18_EDGES if edges is None else edges
    hop = np.full((v, v), np.inf)
    np.fill_diagonal(hop, 0)
    for i, j in edges:
        hop[i, j] = hop[j, i] = 1
    for k in range(v):  # Floyd–Warshall on 18 nodes
        hop = np.minimum(hop, hop[:, [k]] + hop[[k], :])
    a = (hop <= max_hops).astype(np.float32)
    return torch.from_numpy(a / a.sum(1, keepdims=True))


class STGCNLayer(nn.Module):
    """One ST-GCN layer as STG-NF's coupling net: 1x1 conv → graph aggregation → temporal conv."""

    def __init__(self, c_in: int, c_out: int, hidden: int, t_kernel: int, adjacency: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("A", adjacency)
        self.gcn = nn.Conv2d(c_in, hidden, 1)
        self.tcn = _zero_last(nn.Conv2d(hidden, c_out, (t_kernel, 1), padding=(t_kernel // 2, 0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, V)
        h = torch.einsum("bctv,wv->bctw", self.gcn(x), self.A)
        return self.tcn(F.relu(h))


class STGNF(_Flow):
    """STG-NF (Hirschorn & Avidan, ICCV'23): a Glow flow on (B, 2, T, V) pose windows; prior N(R·1, I)."""

    def __init__(self, seg_len: int = 24, joints: int = 18, steps: int = 8, hidden: int = 16,
                 prior_mean: float = 3.0, max_hops: int = 8) -> None:
        a = uniform_adjacency(joints, max_hops)
        t_kernel = seg_len // 2 + 1
        if t_kernel % 2 == 0:
            t_kernel += 1
        nets = [STGCNLayer(1, 2, hidden, t_kernel, a) for _ in range(steps)]
        super().__init__(2, nets, prior_mean)


def build_occ(kind: str, dim: int, cfg: Any) -> nn.Module:
    """The wOCC model named ``kind`` (``ae``, ``flow``, ``stg-nf``) for ``dim``-d features (cfg: UVADConfig)."""
    if kind == "ae":
        return FeatureAE(dim, cfg.occ_hidden)
    if kind == "flow":
        return FeatureFlow(dim, cfg.occ_hidden, cfg.flow_steps, prior_mean=0.0)
    if kind == "stg-nf":
        return STGNF(cfg.seg_len, 18, cfg.flow_steps, hidden=16, prior_mean=cfg.prior_mean)
    raise ValueError(f"uvad.occ: expected ae, flow or stg-nf, got {kind!r}")
