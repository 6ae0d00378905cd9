"""Sultani et al. (CVPR 2018) MIL ranking network: per snippet FC(C→512)-ReLU-Dropout-FC(512→32)-Dropout-FC(32→1)
-sigmoid. Pure torch. Its first layer (FC + ReLU + Dropout) is also the ``mmil`` trunk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn




class MMILNet(nn.Module):
    """x (N,T,C) → snippet scores (N,T) in (0,1). One head shared by every domain (``domains`` only names them)."""

    def __init__(self, feature_dim: int, domains: list[str], hidden: tuple[int, int] = (512, 32), dropout: float = 0.6) -> None:
        super().__init__()
        self.feature_dim, self.hidden = int(feature_dim), (int(hidden[0]), int(hidden[1]))
        self._domains = [str(d) for d in domains]
        self.net = nn.Sequential(
            nn.Linear(feature_dim, self.hidden[0]), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(self.hidden[0], self.hidden[1]), nn.Dropout(dropout),
            nn.Linear(self.hidden[1], 1), nn.Sigmoid(),
        )

    @property
    def domains(self) -> list[str]:
        return list(self._domains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"expected x of shape (N, T, {self.feature_dim}), got {tuple(x.shape)}")
        return self.net(x).squeeze(-1)

    def get_extra_state(self) -> dict[str, Any]:
        return {"feature_dim": self.feature_dim, "hidden": list(self.hidden), "domains": list(self._domains)}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise ValueError(f"MMILNet extra state: expected a mapping, got {type(state).__name__}")
        for key, mine in (("feature_dim", self.feature_dim), ("hidden", list(self.hidden))):
            if key in state and state[key] != mine:
                raise ValueError(f"MMILNet checkpoint mismatch on {key}: checkpoint {state[key]!r}, model {mine!r}")
        self._domains = [str(d) for d in state.get("domains", self._domains)]


class MMILTrunk(nn.Module):
    """The ranking network's first layer as a trunk: x (N,T,C) → ReLU(FC(C→512)) with dropout (N,T,512)."""

    def __init__(self, feature_dim: int, width: int = 512, dropout: float = 0.6) -> None:
        super().__init__()
        self.out_dim = int(width)
        self.fc = nn.Linear(feature_dim, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.fc(x)))
