"""MMIL test-time snippet scores: the network's sigmoid score per snippet, averaged over crops."""

from __future__ import annotations

import torch

from omnivad.methods.base import scoring
from omnivad.methods.mmil.model import MMILNet


def score_video(net: MMILNet, x: torch.Tensor) -> torch.Tensor:
    """Snippet scores (T,) of x (K,T,C), crops averaged, eval mode, no grad."""
    with scoring(net, x) as xs:
        s = net(xs)
    return s.mean(0).float()
