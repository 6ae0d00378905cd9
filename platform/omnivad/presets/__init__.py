"""Shipped config presets: the papers' settings as YAML files next to this module (package data).

``--preset NAME`` (every job that takes a config) loads ``NAME.yaml`` between the defaults and ``--config``:
defaults < preset < ``--config FILE`` < ``--set`` / the job's flags. Every value in a preset carries a YAML
comment naming the spec section it comes from; the first comment line is the preset's one-line summary
(``omnivad config presets``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from omnivad.errors import ConfigError

__all__ = ["list_presets", "preset_summary", "preset_text", "read_preset"]

_SUFFIX = ".yaml"


def _files() -> dict[str, Any]:
    root = resources.files(__name__)
    return {p.name[: -len(_SUFFIX)]: p for p in root.iterdir() if p.name.endswith(_SUFFIX) and p.is_file()}


def list_presets() -> list[str]:
    """The shipped preset names, sorted."""
    return sorted(_files())


def preset_text(name: str) -> str:
    """The YAML text of preset ``name`` (comments included); a ConfigError listing the presets if unknown."""
    files = _files()
    if name not in files:
        raise ConfigError(f"--preset {name!r}: unknown preset (available: {', '.join(sorted(files))})")
    return str(files[name].read_text(encoding="utf-8"))


def preset_summary(name: str) -> str:
    """The first comment line of preset ``name``."""
    for line in preset_text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def read_preset(name: str) -> dict[str, Any]:
    """Preset ``name`` as config data (a mapping of sections)."""
    data = yaml.safe_load(preset_text(name)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {name!r}: expected a mapping at the top level")
    return data
