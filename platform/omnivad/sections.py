"""Config sections registered by their owners, and the documented aliases of moved or renamed keys.

A package that owns a config section (a method, ``uvad``, ``video``, ...) defines a :class:`Section` subclass in
its ``config.py`` and calls :func:`register_section`; :mod:`omnivad.config` builds the root ``Config`` from every
registered section. Imports nothing from the rest of omnivad, so owners and the config can both import it.

An alias maps an old dotted key to its new one: a whole section (``loss`` → ``mdvad``) or one field
(``model.trunk`` → ``mdvad.trunk``, ``mdvad.margin`` → ``mdvad.angular_margin``). :func:`resolve_path` follows
them (repeatedly, so ``loss.margin`` → ``mdvad.margin`` → ``mdvad.angular_margin``); :mod:`omnivad.config`
applies them to files, ``--set`` overrides, ``tune.space`` paths and attribute access.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator

_SECTIONS: dict[str, type[Section]] = {}
_ALIASES: dict[str, str] = {}
_CHECKS: list[Callable[[Any], None]] = []
_EXCLUDED: dict[str, str] = {}
_DERIVED: dict[str, Derived] = {}


@dataclass(frozen=True)
class Derived:
    """A searchable pseudo-field (``mdvad.topk_ratio``): ``read(cfg) -> float`` its value, ``write(data, value,
    cfg)`` sets the real fields in the dumped config ``data``."""

    read: Callable[[Any], float]
    write: Callable[[dict[str, Any], Any, Any], None]


class _Link:
    """A section's link to the root config holding it (for aliases that cross sections, ``cfg.model.trunk``).
    Neutral in equality, copies and pickles: the root relinks its sections."""

    __slots__ = ("ref",)

    def __init__(self, root: Any = None) -> None:
        self.ref = root

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Link)

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> _Link:
        return _Link()

    def __copy__(self) -> _Link:
        return _Link()

    def __reduce__(self) -> tuple[type[_Link], tuple[()]]:
        return (_Link, ())

    def root(self) -> Any:
        return self.ref


class Section(BaseModel):
    # allow_inf_nan=False: ``--set train.lr=.inf`` (or nan) is an error naming the field, in every section
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    _link: _Link = PrivateAttr(default_factory=_Link)

    def __getattr__(self, item: str) -> Any:
        try:
            return super().__getattr__(item)  # type: ignore[misc]
        except AttributeError:
            if item.startswith("_"):
                raise
            obj, leaf = self._alias_target(item)
            return getattr(obj, leaf)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name in type(self).model_fields:
            super().__setattr__(name, value)
            return
        obj, leaf = self._alias_target(name)
        setattr(obj, leaf, value)

    def _alias_target(self, item: str) -> tuple[Any, str]:
        """The object and attribute an old attribute name (``cfg.model.trunk``, ``cfg.bn_wvad.margin``) stands for."""
        name = section_name(type(self))
        target = resolve_path(f"{name}.{item}") if name else item
        if name is None or target == f"{name}.{item}":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {item!r}")
        section, _, leaf = target.rpartition(".")
        if section == name:
            return self, leaf
        root = self._link.root()
        if root is None:
            raise AttributeError(f"{name}.{item} moved to {target}: read it from the root config")
        return getattr(root, section), leaf


def register_section(name: str, cls: type[Section], aliases: dict[str, str] | None = None,
                     identity_excluded: dict[str, str] | None = None) -> type[Section]:
    """Register ``cls`` as config section ``name`` (``cfg.<name>``). ``aliases``: old dotted keys → new ones;
    ``identity_excluded``: this section (``name``) or its fields (``name.field``) that cannot change a trained
    model's weights, with the reason (left out of the run identity, :data:`omnivad.config.IDENTITY_EXCLUDED`)."""
    if not (isinstance(cls, type) and issubclass(cls, Section)):
        raise TypeError(f"section {name!r}: expected a Section subclass, got {cls!r}")
    if name in _SECTIONS and _SECTIONS[name] is not cls:
        raise ValueError(f"config section {name!r} registered twice")
    _SECTIONS[name] = cls
    for old, new in (aliases or {}).items():
        register_alias(old, new)
    for path, why in (identity_excluded or {}).items():
        if path.split(".")[0] != name:
            raise ValueError(f"section {name!r}: identity exclusion {path!r} is outside the section")
        _EXCLUDED[path] = why
    return cls


def register_alias(old: str, new: str) -> None:
    """``old`` (a section name or ``section.field``) is read as ``new``."""
    if _ALIASES.get(old, new) != new:
        raise ValueError(f"config alias {old!r} registered twice ({_ALIASES[old]!r}, {new!r})")
    _ALIASES[old] = new


def register_check(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    """``fn(cfg)`` runs when a config is resolved (:func:`omnivad.config.check_registered`); it raises
    :class:`~omnivad.errors.ConfigError` naming the field, e.g. for a name that must be registered."""
    _CHECKS.append(fn)
    return fn


def register_derived(path: str, read: Callable[[Any], float], write: Callable[[dict[str, Any], Any, Any], None]) -> None:
    """Register the pseudo-field ``path`` (see :class:`Derived`); ``tune.space`` may search it."""
    if path in _DERIVED:
        raise ValueError(f"derived config field {path!r} registered twice")
    _DERIVED[path] = Derived(read, write)


def derived(path: str) -> Derived | None:
    """The pseudo-field at ``path`` (aliases followed), or None."""
    return _DERIVED.get(resolve_path(path))


def registered_sections() -> dict[str, type[Section]]:
    return dict(_SECTIONS)


def registered_checks() -> list[Callable[[Any], None]]:
    return list(_CHECKS)


def identity_excluded() -> dict[str, str]:
    return dict(_EXCLUDED)


def aliases() -> dict[str, str]:
    return dict(_ALIASES)


def section_class(name: str) -> type[Section]:
    if name not in _SECTIONS:
        raise KeyError(f"no config section {name!r} (registered: {', '.join(_SECTIONS)})")
    return _SECTIONS[name]


def section_name(cls: type[Section]) -> str | None:
    for name, c in _SECTIONS.items():
        if c is cls:
            return name
    return None


def sections_view(names: tuple[str, ...] | list[str], data: Any) -> Any:
    """An object with the sections ``names`` as attributes, validated from ``data`` ({section: field values})."""
    from types import SimpleNamespace

    return SimpleNamespace(**{n: section_class(n).model_validate(data.get(n) or {}) for n in names})


def resolve_path(path: str) -> str:
    """The current dotted key of ``path``, following the aliases (``loss.tau`` → ``mdvad.tau``)."""
    for _ in range(8):
        parts = path.split(".")
        for i in range(len(parts), 0, -1):
            head = ".".join(parts[:i])
            if head in _ALIASES:
                path = ".".join([_ALIASES[head], *parts[i:]])
                break
        else:
            return path
    raise ValueError(f"config alias loop at {path!r}")


def resolve_aliases(data: dict[str, Any]) -> dict[str, str]:
    """Move every aliased ``section.field`` (or whole section) of ``data`` to its current key, in place (an
    alias given next to its current key wins: it came from a later override). Returns {new path: old path}."""
    renamed: dict[str, str] = {}
    for sec in list(data):
        if resolve_path(sec) != sec and isinstance(data[sec], dict):  # a whole section moved: field by field
            for f, v in data.pop(sec).items():
                data.setdefault(resolve_path(sec), {})
                _put(data, f"{sec}.{f}", v, renamed)
        elif isinstance(data[sec], dict):
            for f in list(data[sec]):
                if resolve_path(f"{sec}.{f}") != f"{sec}.{f}":
                    _put(data, f"{sec}.{f}", data[sec].pop(f), renamed)
    return renamed


def _put(data: dict[str, Any], old: str, value: Any, renamed: dict[str, str]) -> None:
    new = resolve_path(old)
    *parents, leaf = new.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    renamed[new] = old


class _Root(Section):
    """The root config: one field per registered section (:func:`omnivad.sections.register_section`)."""

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(resolve_path(k) != k or isinstance(v, dict) and any(
                resolve_path(f"{k}.{f}") != f"{k}.{f}" for f in v) for k, v in data.items()):
            data = json.loads(json.dumps(data))
            resolve_aliases(data)
        return data

    @model_validator(mode="after")
    def _relink(self) -> _Root:
        for name in type(self).model_fields:
            getattr(self, name)._link = _Link(self)
        return self

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> _Root:
        return super().model_copy(update=update, deep=deep)._relink()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._relink()

    def __copy__(self) -> _Root:
        return super().__copy__()._relink()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> _Root:
        return super().__deepcopy__(memo)._relink()

    def _alias_target(self, item: str) -> tuple[Any, str]:
        target = resolve_path(item)
        if target == item or "." in target:
            raise AttributeError(f"'Config' object has no attribute {item!r}")
        return self, target


def build_root() -> type[_Root]:
    """The root ``Config`` class: one field per section registered so far (the plug-ins register first)."""
    fields: dict[str, Any] = {name: (cls, Field(default_factory=cls)) for name, cls in registered_sections().items()}
    return create_model("Config", __base__=_Root, __module__=__name__, **fields)
