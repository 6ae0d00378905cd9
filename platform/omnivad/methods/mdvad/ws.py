"""MDVAD's single head as a WS model for ``uvad`` (``uvad.ws=mil``, alias ``mdvad``; spec wocc_ws.md §3.3)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from omnivad.methods.mdvad.loss import mil_loss
from omnivad.methods.mdvad.model import MDVADNet


class MDVADWS(nn.Module):
    """The MDVAD network with its single shared head, used as the alternative WS model."""

    def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.7) -> None:
        super().__init__()
        self.net = MDVADNet(dim, ["uvad"], head="single", hidden=hidden, dropout=dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, f = self.net.features(x)
        return torch.sigmoid(self.net.single_head(f))[..., 0], f


def build_ws(dim: int, cfg: Any) -> MDVADWS:
    """``cfg``: the ``uvad`` section (its ``dropout``)."""
    if dim % 2:
        raise ValueError(f"uvad.ws=mil: the MDVAD trunk needs an even feature dim, got {dim}")
    return MDVADWS(dim, 128, cfg.dropout)


def mil_bag_loss(model: nn.Module, pos: torch.Tensor, neg: torch.Tensor, cfg: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """MDVAD Eq. 1 on pseudo bags: BCE of each bag's top-k scores (``cfg.rtfm_k``) against its bag label."""
    scores, _ = model(torch.cat([pos, neg], 0))
    y = torch.cat([torch.ones(pos.shape[0]), torch.zeros(neg.shape[0])]).to(scores)
    loss = mil_loss(scores, y, cfg.rtfm_k)
    return loss, {"cls": float(loss.detach())}
