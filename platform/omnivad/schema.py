"""The configuration schema as text (``omnivad config show [section]``): every field of every section with its
type, default and description."""

from __future__ import annotations

import json
from typing import Any

from omnivad.errors import ConfigError


def _default(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(value, default=str)
    except TypeError:
        return repr(value)


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def section_lines(name: str, section: Any) -> list[str]:
    """``name.field  (type, default X)  description`` for each field of one section."""
    cls = type(section)
    lines = [f"[{name}] {(cls.__doc__ or '').strip().splitlines()[0] if cls.__doc__ else ''}".rstrip()]
    for field, info in cls.model_fields.items():
        desc = info.description or ""
        lines.append(f"  {name}.{field}  ({_type(info.annotation)}, default {_default(getattr(section, field))})"
                     + (f"  {desc}" if desc else ""))
    return lines


def describe_schema(only: str | None = None) -> str:
    """Every section (or only ``only``) of the default config."""
    from omnivad import config

    cfg = config.load()
    names = list(type(cfg).model_fields)
    if only is not None and only not in names:
        raise ConfigError(f"config show: no section {only!r} (sections: {', '.join(names)})")
    out: list[str] = []
    for name in names if only is None else [only]:
        out += section_lines(name, getattr(cfg, name)) + [""]
    return "\n".join(out).rstrip()
