"""BN-WVAD test-time snippet scores (spec ``bn_wvad.md`` §2.8)."""

from __future__ import annotations

import torch

from omnivad.methods.base import scoring
from omnivad.methods.bn_wvad.model import BNWVADNet


def score_video(net: BNWVADNet, x: torch.Tensor, score: str | None = None) -> torch.Tensor:
    """§2.8 snippet scores (T,) of x (K,T,C): each crop's p·(DFM1+DFM2) (or the ``score`` rule), then the mean
    over crops (the code averages the product)."""
    with scoring(net, x) as xs:
        s = net.snippet_scores(xs, score)
    return s.mean(0).float()
