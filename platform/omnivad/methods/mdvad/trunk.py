"""MDVAD's own trunk ``mdvad``: F_agg + F_DA (spec ``mdvad.md`` §4), registered in :mod:`omnivad.methods.trunks`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnivad.methods.trunks import register_trunk


class MDVADTrunk(nn.Module):
    """MDVAD's F_agg + F_DA (spec ``mdvad.md`` §4): Conv1d(C→2C,k3) → split-max → ReLU → BN(C) →
    Conv1d(C→C/2,k3) → ReLU → BN(C/2). x (N,T,C) → (N,T,C/2)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        if feature_dim < 2 or feature_dim % 2:
            raise ValueError(f"feature_dim: expected an even number >= 2, got {feature_dim}")
        c = self.feature_dim = int(feature_dim)
        self.out_dim = c // 2
        self.conv_agg = nn.Conv1d(c, 2 * c, kernel_size=3, stride=1, padding=1)
        self.bn_agg = nn.BatchNorm1d(c)
        self.conv_da = nn.Conv1d(c, c // 2, kernel_size=3, stride=1, padding=1)
        self.bn_da = nn.BatchNorm1d(c // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mdvad_trunk_forward(self, x)


def mdvad_trunk_forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The MDVAD trunk's forward on any module holding ``conv_agg, bn_agg, conv_da, bn_da`` and ``feature_dim``
    (MDVADNet keeps these layers at its top level so its checkpoints keep their keys)."""
    c = m.feature_dim
    h = m.conv_agg(x.transpose(1, 2))  # (N, 2C, T)
    h = torch.maximum(h[:, :c], h[:, c:])  # split-max (Max-Feature-Map)
    h = m.bn_agg(F.relu(h))
    h = m.bn_da(F.relu(m.conv_da(h)))  # (N, C/2, T)
    return h.transpose(1, 2)


@register_trunk("mdvad")
def mdvad_trunk(cfg: Any, feature_dim: int) -> MDVADTrunk:
    return MDVADTrunk(feature_dim)
