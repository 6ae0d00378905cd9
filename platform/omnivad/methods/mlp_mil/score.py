"""Test-time scores of the reference network: crops averaged at the input, the target's own head, or the max over
heads for a domain the model has no head for."""

from __future__ import annotations

import torch

from omnivad.methods.base import scoring
from omnivad.methods.mlp_mil.loss import own_head
from omnivad.methods.mlp_mil.model import MLPMILNet


def score_video(net: MLPMILNet, x: torch.Tensor, target: str | None) -> torch.Tensor:
    """Snippet scores (T,) in [0, 1] of x (K, T, C), eval mode, no grad."""
    with scoring(net, x) as xs:
        abn = net(xs.mean(0, keepdim=True))["abn"]
        dom = net.domains.index(target) if target in net.domains and net.multi_head else -1
        return own_head(abn, torch.tensor([dom]))[0].float()
