"""Methods (and WS models) registered by name and built through one factory (the timm way).

The registry imports no method: a method's package registers itself on import (``@register``), and the built-in
plug-ins are imported by :mod:`omnivad.plugins` (which :mod:`omnivad.config` imports), never by ``methods/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from omnivad.errors import ConfigError
from omnivad.methods.base import Method, split_entry

_REGISTRY: dict[str, Method] = {}
M = TypeVar("M")


def register(name: str) -> Callable[[type[M]], type[M]]:
    def deco(cls: type[M]) -> type[M]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        inst = cls()
        inst.name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = inst  # type: ignore[assignment]
        return cls

    return deco


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise ConfigError(f"model.method: unknown method {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def list_methods() -> list[str]:
    return sorted(_REGISTRY)


def create_model(cfg: Any, domains: list[str], feature_dim: int) -> nn.Module:
    """A fresh model of ``cfg.model.method``."""
    return get_method(cfg.model.method).build(cfg, list(domains), int(feature_dim))


def entry_overrides(entry: str) -> dict[str, Any]:
    """One ``--methods`` entry ``METHOD[@TRUNK][+ac|+noac]`` → config overrides (the named method's hook)."""
    return get_method(split_entry(entry)[0]).entry_overrides(entry)


# ---------------------------------------------------------------------------------------------- WS models
@dataclass(frozen=True)
class WSModel:
    """A weakly supervised model for ``uvad`` (spec wocc_ws.md §3.3): ``build(dim, uvad_cfg) -> nn.Module``
    returning ``(scores (B,L), features (B,L,D))``, and ``loss(model, pos, neg, uvad_cfg) -> (loss, logs)``."""

    build: Callable[[int, Any], nn.Module]
    loss: Callable[..., Any]


_WS: dict[str, WSModel] = {}
_WS_ALIASES: dict[str, str] = {}


def register_ws_model(name: str, build: Callable[[int, Any], nn.Module], loss: Callable[..., Any],
                      aliases: tuple[str, ...] = ()) -> None:
    if name in _WS or name in _WS_ALIASES:
        raise ValueError(f"WS model {name!r} registered twice")
    _WS[name] = WSModel(build, loss)
    for a in aliases:
        _WS_ALIASES[a] = name


def get_ws_model(name: str) -> WSModel:
    """The WS model ``name`` (or an alias of one, e.g. ``mdvad`` for ``mil``)."""
    key = _WS_ALIASES.get(name, name)
    if key not in _WS:
        raise ConfigError(f"uvad.ws: unknown WS model {name!r} (known: {', '.join(list_ws_models())})")
    return _WS[key]


def list_ws_models(aliases: bool = True) -> list[str]:
    return sorted([*_WS, *(_WS_ALIASES if aliases else ())])
