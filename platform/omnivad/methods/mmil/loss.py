"""MMIL's loss: Sultani Eqs. 6–7 (the MIL ranking hinge with smoothness and sparsity on abnormal bags)."""

from __future__ import annotations

import torch

from omnivad.methods.crops import forward_crops


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
    s = s.float()  # hinges and the tiny smoothness/sparsity terms in float32 (bf16 autocast)
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


def snippet_scores(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Scores (B,T) of a batch x (B,K,T,C): the network on every real crop, averaged over each video's crops."""
    return forward_crops(_Dict(model), x, mask)["s"]  # type: ignore[arg-type]
