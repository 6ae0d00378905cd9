"""MMIL: the MIL ranking baseline of Sultani, Chen and Shah (CVPR 2018), Table 10's "MMIL" row.

L = Σ_pairs max(0, m − max_t s_a(t) + max_t s_n(t)) + λ1 Σ_t (s_a(t) − s_a(t+1))² + λ2 Σ_t s_a(t) (Eqs. 6–7; the
‖W‖ term is ``train.weight_decay``), averaged over pairs. A pair is an abnormal and a normal video of the same
domain; crops are averaged at the score level (the network runs on every real crop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.base import scoring, unwrap_as
from omnivad.methods.mdvad.loss import forward_crops
from omnivad.methods.mmil.model import MMILNet, MMILTrunk
from omnivad.methods.registry import register

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch

__all__ = ["MMILMethod", "MMILNet", "MMILTrunk", "mmil_loss", "unwrap"]


def unwrap(model: torch.nn.Module) -> MMILNet:
    return unwrap_as(model, MMILNet, "mmil")


class _Dict(torch.nn.Module):
    """Adapts a scores-only network to :func:`forward_crops` (which averages every dict output over crops)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"s": self.net(x)}


def mmil_loss(s: torch.Tensor, y: torch.Tensor, dom: torch.Tensor, margin: float = 1.0, lambda_smooth: float = 8e-5,
              lambda_sparse: float = 8e-5, pairing: str = "paired") -> tuple[torch.Tensor, dict[str, float]]:
    """Sultani Eqs. 6–7 on snippet scores s (B,T), labels y (B,), domains dom (B,), mean over the hinge pairs.

    ``paired``: the i-th abnormal with the i-th normal video of a domain (batch order; the shorter list sets the
    count); ``all-pairs``: every abnormal × normal pair of a domain. Smoothness and sparsity act on abnormal bags
    (Eq. 6), once per pair, as in the pairwise formula."""
    hinges, smooth, sparse = [], [], []
    best = s.max(dim=1).values
    sm = ((s[:, 1:] - s[:, :-1]) ** 2).sum(1)
    sp = s.sum(1)
    for d in torch.unique(dom).tolist():
        a = torch.nonzero((dom == d) & (y > 0.5)).flatten()
        n = torch.nonzero((dom == d) & (y <= 0.5)).flatten()
        if len(a) == 0 or len(n) == 0:
            continue
        if pairing == "paired":
            k = min(len(a), len(n))
            ia, inn = a[:k], n[:k]
        elif pairing == "all-pairs":
            ia, inn = a.repeat_interleave(len(n)), n.repeat(len(a))
        else:
            raise ValueError(f"pairing: expected paired or all-pairs, got {pairing!r}")
        hinges.append(torch.relu(margin - best[ia] + best[inn]))
        smooth.append(sm[ia])
        sparse.append(sp[ia])
    if not hinges:
        raise ValueError("MMIL needs a normal and an abnormal video of the same domain in every batch")
    h, smo, spa = torch.cat(hinges).mean(), torch.cat(smooth).mean(), torch.cat(sparse).mean()
    total = h + lambda_smooth * smo + lambda_sparse * spa
    return total, {"loss": float(total.detach()), "rank": float(h.detach()), "smooth": float(smo.detach()),
                   "sparse": float(spa.detach())}


@register("mmil")
class MMILMethod:
    name: str

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> MMILNet:
        return MMILNet(feature_dim, list(domains), tuple(cfg.mmil.hidden), cfg.mmil.dropout)  # type: ignore[arg-type]

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        unwrap(model)
        s = forward_crops(_Dict(model), batch.x, batch.mask)["s"]  # type: ignore[arg-type]
        c = cfg.mmil
        y = batch.y.to(s.device)
        return mmil_loss(s, y, batch.dom.to(s.device), c.margin, c.lambda_smooth, c.lambda_sparse, c.pairing)

    def score(self, model: torch.nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        """Snippet scores (T,) of x (K,T,C), crops averaged, eval mode, no grad."""
        net = unwrap(model)
        with scoring(net, x) as xs:
            s = net(xs)
        return s.mean(0).float()
