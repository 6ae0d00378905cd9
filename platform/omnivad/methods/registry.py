"""Methods registered by name and built through one factory (the timm way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from omnivad.errors import ConfigError
from omnivad.methods.base import Method

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
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"model.method: unknown method {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def list_methods() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Importing a method's package registers it.
    import omnivad.methods.mdvad  # noqa: F401
    import omnivad.methods.bn_wvad  # noqa: F401
    import omnivad.methods.mmil  # noqa: F401
    import omnivad.methods.como  # noqa: F401
