"""Trunks: the shared ("domain-agnostic") feature extractor under MDVAD's heads, registered by name.

A trunk factory ``fn(cfg, feature_dim) -> nn.Module`` returns a module with ``out_dim: int`` and
``forward(x (N,T,C)) -> (N,T,out_dim)``. :class:`~omnivad.methods.mdvad.model.MDVADNet` takes its F_DA from
the trunk named by ``model.trunk``, so the NullAng/Null heads and the Abnormal-Conflict classifier sit on top of
any registered trunk (``model.method=nullang-mil model.trunk=bn-wvad``). ``sections`` names the config sections a
trunk reads; MDVADNet stores them in its extra state so a checkpoint rebuilds the same trunk without the job config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from omnivad.errors import ConfigError

if TYPE_CHECKING:
    from omnivad.config import Config

TrunkFactory = Callable[["Config", int], nn.Module]


@dataclass(frozen=True)
class TrunkEntry:
    factory: TrunkFactory
    sections: tuple[str, ...]


_TRUNKS: dict[str, TrunkEntry] = {}


def register_trunk(name: str, sections: tuple[str, ...] = ()) -> Callable[[TrunkFactory], TrunkFactory]:
    """Register ``fn(cfg, feature_dim) -> nn.Module`` as trunk ``name``; ``sections``: the config sections it reads."""

    def deco(fn: TrunkFactory) -> TrunkFactory:
        if name in _TRUNKS:
            raise ValueError(f"trunk {name!r} registered twice")
        _TRUNKS[name] = TrunkEntry(fn, tuple(sections))
        return fn

    return deco


def _load_builtin() -> None:
    # Trunks living in method packages register on import (the bn-wvad trunk is BN-WVAD's encoder).
    from omnivad.methods.registry import _load_builtin as load_methods

    load_methods()


def trunk_entry(name: str) -> TrunkEntry:
    _load_builtin()
    if name not in _TRUNKS:
        raise ConfigError(f"model.trunk: unknown trunk {name!r} (known: {', '.join(sorted(_TRUNKS))})")
    return _TRUNKS[name]


def build_trunk(name: str, cfg: Config | None, feature_dim: int) -> nn.Module:
    """A fresh trunk ``name`` for ``feature_dim``-d inputs; ``cfg`` None means the default config."""
    from omnivad.config import Config

    module = trunk_entry(name).factory(cfg if cfg is not None else Config(), int(feature_dim))
    if not isinstance(getattr(module, "out_dim", None), int):
        raise TypeError(f"trunk {name!r}: the module has no integer out_dim")
    return module


def list_trunks() -> list[str]:
    _load_builtin()
    return sorted(_TRUNKS)


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
def mdvad_trunk(cfg: Config, feature_dim: int) -> MDVADTrunk:
    return MDVADTrunk(feature_dim)
