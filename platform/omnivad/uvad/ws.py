"""WS models trained on hard snippet pseudo-labels (spec wocc_ws.md §3.3): RTFM, or a WS model a method registers
(:func:`omnivad.methods.registry.register_ws_model`, e.g. ``mil``).

Bags are 16 snippets drawn from the pseudo-abnormal (positive) or pseudo-normal (negative) pool, pooled
over every training video of a domain. Shapes: bags ``(B, L, C)`` (L = bag size, crops averaged);
a model returns ``(scores (B, L) in [0, 1], features (B, L, D))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------------------------------------- bags
def make_bags(pool: np.ndarray, pool_scores: np.ndarray, bag_size: int, rng: np.random.Generator,
              anchored: bool = True, anchors: int = 3) -> np.ndarray:
    """Bags of snippet indices (n_bags, bag_size) covering ``pool`` once (the code's ``create_bag``).

    The pool is sorted by its wOCC score ascending, padded to a multiple of ``bag_size`` by repeating its
    end, then reversed (descending). With ``anchored`` bag b takes the anchors b, b+B, b+2B of the top-3B
    block (one per third) and ``bag_size - 3`` of the shuffled rest; otherwise every slot is random.
    """
    pool = np.asarray(pool, dtype=np.int64)
    if pool.size == 0:
        return np.zeros((0, bag_size), dtype=np.int64)
    order = pool[np.argsort(np.asarray(pool_scores), kind="stable")]
    pad = (-order.size) % bag_size
    if pad:
        order = np.concatenate([order, np.resize(order[::-1], pad)[::-1]])
    order = order[::-1]
    n_bags = order.size // bag_size
    if not anchored or bag_size <= anchors:
        return rng.permutation(order).reshape(n_bags, bag_size)
    top, rest = order[: anchors * n_bags], rng.permutation(order[anchors * n_bags :])
    anchor_cols = top.reshape(anchors, n_bags).T  # bag b: b, b+B, b+2B
    return np.concatenate([anchor_cols, rest.reshape(n_bags, bag_size - anchors)], axis=1)


# ---------------------------------------------------------------------------------------------- RTFM
class NonLocal1d(nn.Module):
    """Embedded-Gaussian non-local block over the time axis, residual (RTFM's MTN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inter = max(1, channels // 2)
        self.theta = nn.Conv1d(channels, inter, 1)
        self.phi = nn.Conv1d(channels, inter, 1)
        self.g = nn.Conv1d(channels, inter, 1)
        self.out = nn.Sequential(nn.Conv1d(inter, channels, 1), nn.BatchNorm1d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        att = torch.softmax(torch.einsum("bci,bcj->bij", self.theta(x), self.phi(x)), dim=-1)
        y = torch.einsum("bij,bcj->bci", att, self.g(x))
        return x + self.out(y)


class RTFM(nn.Module):
    """RTFM (Tian et al. ICCV'21): MTN aggregator (3 dilated convs + non-local), dropout, FC scorer."""

    def __init__(self, dim: int, hidden: int = 512, dropout: float = 0.7) -> None:
        super().__init__()
        h = max(2, min(hidden, max(dim // 4, 16)))
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv1d(dim, h, 3, padding=d, dilation=d), nn.ReLU(), nn.BatchNorm1d(h)) for d in (1, 2, 4)
        )
        self.local = nn.Sequential(nn.Conv1d(dim, h, 1), nn.ReLU(), NonLocal1d(h))
        self.fuse = nn.Sequential(nn.Conv1d(4 * h, dim, 3, padding=1), nn.ReLU(), nn.BatchNorm1d(dim))
        self.drop = nn.Dropout(dropout)
        s1, s2 = max(16, min(512, dim)), max(8, min(128, dim // 4))
        self.scorer = nn.Sequential(nn.Linear(dim, s1), nn.ReLU(), nn.Dropout(dropout), nn.Linear(s1, s2), nn.ReLU(),
                                    nn.Dropout(dropout), nn.Linear(s2, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, C) → scores (B, L), aggregated features (B, L, C)."""
        xc = x.transpose(1, 2)
        h = torch.cat([b(xc) for b in self.branches] + [self.local(xc)], dim=1)
        feat = self.drop((self.fuse(h) + xc).transpose(1, 2))
        return torch.sigmoid(self.scorer(feat)).squeeze(-1), feat


def ws_names() -> list[str]:
    """The values ``uvad.ws`` accepts: ``rtfm`` and every registered WS model (aliases included)."""
    from omnivad.methods.registry import list_ws_models

    return ["rtfm", *list_ws_models()]


def build_ws(kind: str, dim: int, cfg: Any) -> nn.Module:
    if kind == "rtfm":
        return RTFM(dim, cfg.ws_hidden, cfg.dropout)
    from omnivad.methods.registry import get_ws_model

    return get_ws_model(kind).build(dim, cfg)


# ---------------------------------------------------------------------------------------------- losses
def _topk_idx(mag: torch.Tensor, k: int, training: bool, p: float) -> torch.Tensor:
    """Top-k snippet indices by feature magnitude; in training a dropout mask is applied first (RTFM)."""
    if training and p > 0:
        mag = mag * F.dropout(torch.ones_like(mag), p)
    return mag.topk(min(k, mag.shape[1]), dim=1).indices


def rtfm_loss(model: nn.Module, pos: torch.Tensor, neg: torch.Tensor, cfg: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """L_WS = L_cls (Eq. 5) + α·L_sep (Eq. 4, code form) + λ_sp·||s⁺||₂ + λ_sm·Σ(s⁺_{t+1} − s⁺_t)² (§3.3).

    Bags ``pos``/``neg`` are (B, L, C) crop means or (B, K, L, C) with every crop (``uvad.ws_input=crops``, the
    RTFM code): each crop runs through the model; scores and feature magnitudes are averaged over the crops, the
    top-k picked on those magnitudes, and L_sep pairs crop c of positive bag b with crop c of negative bag b."""
    b = pos.shape[0]
    x = torch.cat([pos, neg], 0)
    if x.dim() == 3:
        x = x.unsqueeze(1)  # one crop
    n, k, length, c = x.shape
    scores, feat = model(x.reshape(n * k, length, c))
    scores = scores.view(n, k, length).mean(1)  # (2B, L)
    feat = feat.view(n, k, length, feat.shape[-1])  # (2B, K, L, D)
    mag = feat.norm(dim=-1).mean(1)
    idx = _topk_idx(mag.detach(), cfg.rtfm_k, model.training, cfg.dropout)
    top_feat = feat.gather(2, idx[:, None, :, None].expand(-1, k, -1, feat.shape[-1])).mean(2)  # (2B, K, D)
    top_score = scores.gather(1, idx).mean(1).clamp(1e-6, 1 - 1e-6)
    y = torch.cat([torch.ones(b), torch.zeros(neg.shape[0])]).to(scores)
    l_cls = F.binary_cross_entropy(top_score, y)
    n_pos, n_neg = top_feat[:b].norm(dim=-1), top_feat[b:].norm(dim=-1)
    l_sep = (((cfg.rtfm_margin - n_pos).abs() + n_neg) ** 2).mean()
    if cfg.rtfm_extra_neg:
        l_sep = l_sep + (n_neg**2).mean()
    s_pos = scores[:b].reshape(-1)
    l_sp = s_pos.norm(dim=0)
    l_sm = ((s_pos[1:] - s_pos[:-1]) ** 2).sum()
    loss = l_cls + cfg.rtfm_alpha * l_sep + cfg.rtfm_sparsity * l_sp + cfg.rtfm_smooth * l_sm
    return loss, {"cls": float(l_cls.detach()), "sep": float(l_sep.detach())}


class CropMean(nn.Module):
    """A WS model on bags with every crop: x (B, K, L, C) → its scores and features averaged over the K crops
    (for the registered WS models, whose losses take (B, L) scores; RTFM's loss handles crops itself)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 3:
            return self.inner(x)
        b, k, length, c = x.shape
        scores, feat = self.inner(x.reshape(b * k, length, c))
        return scores.view(b, k, length).mean(1), feat.view(b, k, length, -1).mean(1)


def ws_loss(kind: str) -> Any:
    if kind == "rtfm":
        return rtfm_loss
    from omnivad.methods.registry import get_ws_model

    return get_ws_model(kind).loss
