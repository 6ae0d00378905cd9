"""The reference network of the conflict study: one MLP layer and a linear head per domain (or one shared head).
Pure torch: plain constructor arguments, no config, no registration."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class MLPMILNet(nn.Module):
    """x (N, T, C) → Linear(C, hidden) → ReLU → Dropout(p) → Linear(hidden, M) → sigmoid: ``abn`` (N, T, M), M = 1
    for the shared head (``multi_head=False``) or one column per domain."""

    def __init__(self, feature_dim: int, domains: list[str], multi_head: bool, hidden: int = 128,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if not domains:
            raise ValueError("domains: expected at least one domain")
        self.domains = [str(d) for d in domains]
        self.multi_head = bool(multi_head)
        self.body = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, len(self.domains) if self.multi_head else 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"abn": torch.sigmoid(self.head(self.body(x)))}

    def get_extra_state(self) -> dict[str, Any]:
        return {"domains": list(self.domains), "multi_head": self.multi_head}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if list(state["domains"]) != self.domains or bool(state["multi_head"]) != self.multi_head:
            raise ValueError(f"state dict of an MLPMILNet with domains {state['domains']} (multi_head="
                             f"{state['multi_head']}), this one has {self.domains} (multi_head={self.multi_head})")
