"""Top-K BCE of the reference network: each video's own head (the shared one for ``mlp-mil``), the max over heads
for a video of a domain without a head (dom = -1)."""

from __future__ import annotations

import torch

from omnivad.data.batch import Batch
from omnivad.methods.mlp_mil.model import MLPMILNet


def average_crops(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of x (B, K, T, C) over each video's real crops (mask (B, K)) → (B, T, C)."""
    w = mask.to(x.dtype).unsqueeze(-1).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


def own_head(abn: torch.Tensor, dom: torch.Tensor) -> torch.Tensor:
    """s (B, T): column ``dom`` of abn (B, T, M) per video (column 0 when M = 1), the max over columns for dom -1."""
    if abn.shape[-1] == 1:
        return abn[..., 0]
    dom = dom.to(device=abn.device, dtype=torch.long)
    picked = abn.gather(2, dom.clamp(min=0).view(-1, 1, 1).expand(-1, abn.shape[1], 1)).squeeze(2)
    return torch.where((dom >= 0).view(-1, 1), picked, abn.max(-1).values)


def topk_bce(net: MLPMILNet, batch: Batch, k: int) -> torch.Tensor:
    """Mean BCE of each video's top-K own-head scores against its label."""
    x = average_crops(batch.x, batch.mask.to(batch.x.device))
    s = own_head(net(x)["abn"], batch.dom)
    top = s.topk(min(k, s.shape[1]), dim=1).values.float().clamp(1e-6, 1 - 1e-6)
    y = batch.y.to(top).view(-1, 1).expand_as(top)
    return torch.nn.functional.binary_cross_entropy(top, y)
