"""Trunks: the shared ("domain-agnostic") feature extractor under MDVAD's heads, registered by name.

The registry imports no method: each trunk registers from its method package (``mdvad``: ``methods/mdvad/trunk.py``).

A trunk factory ``fn(cfg, feature_dim) -> nn.Module`` returns a module with ``out_dim: int`` and
``forward(x (N,T,C)) -> (N,T,out_dim)``. :class:`~omnivad.methods.mdvad.model.MDVADNet` takes its F_DA from
the trunk named by ``mdvad.trunk``, so the NullAng/Null heads and the Abnormal-Conflict classifier sit on top of
any registered trunk (``model.method=nullang-mil mdvad.trunk=bn-wvad``). ``sections`` names the config sections a
trunk reads; MDVADNet stores them in its extra state so a checkpoint rebuilds the same trunk without the job config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from omnivad.errors import ConfigError
from omnivad.sections import sections_view

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


def trunk_entry(name: str) -> TrunkEntry:
    if name not in _TRUNKS:
        raise ConfigError(f"model.trunk: unknown trunk {name!r} (known: {', '.join(sorted(_TRUNKS))})")
    return _TRUNKS[name]


def build_trunk(name: str, cfg: Config | Mapping[str, Any] | None, feature_dim: int) -> nn.Module:
    """A fresh trunk ``name`` for ``feature_dim``-d inputs. ``cfg``: the config (anything with the trunk's sections
    as attributes), or ``{section: field values}`` of the sections it reads (a checkpoint's), None for defaults."""
    entry = trunk_entry(name)
    if cfg is None or isinstance(cfg, Mapping):
        cfg = sections_view(entry.sections, cfg or {})
    module = entry.factory(cfg, int(feature_dim))
    if not isinstance(getattr(module, "out_dim", None), int):
        raise TypeError(f"trunk {name!r}: the module has no integer out_dim")
    return module


def list_trunks() -> list[str]:
    return sorted(_TRUNKS)
