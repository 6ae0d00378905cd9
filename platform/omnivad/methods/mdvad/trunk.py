"""MDVAD's own trunk ``mdvad``: F_agg + F_DA (spec ``mdvad.md`` §4), registered in :mod:`omnivad.methods.trunks`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnivad.methods.trunks import register_trunk


class MDVADTrunk(nn.Module):
    """MDVAD's F_agg + F_DA (spec ``mdvad.md`` §4): Conv1d(C→2C,k3) → split-max → ReLU → BN(C) →
    Conv1d(C→C/2,k3) → ReLU → BN(C/2). x (N,T,C) → (N,T,C/2).

    ``kernel`` (odd; 1 makes the trunk pointwise, no temporal context) and ``bn`` (False: no BatchNorm) are the
    issue-17 ablation variants, registered as the trunks ``mdvad-k1`` and ``mdvad-nobn``."""

    def __init__(self, feature_dim: int, kernel: int = 3, bn: bool = True) -> None:
        super().__init__()
        if feature_dim < 2 or feature_dim % 2:
            raise ValueError(f"feature_dim: expected an even number >= 2, got {feature_dim}")
        c = self.feature_dim = int(feature_dim)
        self.out_dim = c // 2
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd number >= 1, got {kernel}")
        self.conv_agg = nn.Conv1d(c, 2 * c, kernel_size=kernel, stride=1, padding=kernel // 2)
        self.bn_agg = nn.BatchNorm1d(c) if bn else nn.Identity()
        self.conv_da = nn.Conv1d(c, c // 2, kernel_size=kernel, stride=1, padding=kernel // 2)
        self.bn_da = nn.BatchNorm1d(c // 2) if bn else nn.Identity()

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


@register_trunk("mdvad-k1")
def mdvad_k1_trunk(cfg: Any, feature_dim: int) -> MDVADTrunk:
    """MDVAD's trunk with kernel-1 convolutions: split-max and BN kept, no temporal context."""
    return MDVADTrunk(feature_dim, kernel=1)


@register_trunk("mdvad-nobn")
def mdvad_nobn_trunk(cfg: Any, feature_dim: int) -> MDVADTrunk:
    """MDVAD's trunk without its two BatchNorms."""
    return MDVADTrunk(feature_dim, bn=False)


class IdentityTrunk(nn.Module):
    """No trunk: F_DA = x (out_dim C), so the network is fc(C→hidden) → ReLU → heads (the reference body)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.out_dim = int(feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@register_trunk("identity")
def identity_trunk(cfg: Any, feature_dim: int) -> IdentityTrunk:
    return IdentityTrunk(feature_dim)
