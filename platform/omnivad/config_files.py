"""Reading config data: YAML/JSON files, ``--set KEY=VALUE`` overrides, the aliases of old keys, and error
messages naming the field. Plain dicts only; :mod:`omnivad.config` validates them into ``Config``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from omnivad.errors import ConfigError
from omnivad.sections import resolve_path


def _format_errors(exc: ValidationError, origin: str, renamed: dict[str, str] | None = None) -> str:
    """One line per error naming the field; a field given under an alias is named as it was given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        for new, old in (renamed or {}).items():
            if loc == new or loc.startswith(new + "."):
                loc = old + loc[len(new):]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        got = err.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{got_s}")
    return f"invalid config{origin}: " + "; ".join(lines)


_EXP_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: ``3``, ``1e-4``, ``true``, ``[a, b]``, ``null``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 (PyYAML) reads "1e-4" (no dot) as a string; read it as the float it is meant to be.
    if isinstance(value, str) and _EXP_FLOAT.match(value.strip()):
        return float(value)
    return value


def flag_overrides(flags: dict[str, Any]) -> list[str]:
    """A job's own command-line flags as ``--set`` overrides (flags left unset, None, are skipped)."""
    return [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]


def apply_override(data: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: empty field name in {key!r}")
    given, parts = parts, resolve_path(".".join(parts)).split(".")  # an aliased key (loss.tau) sets its current field
    node = data
    for i, p in enumerate(parts[:-1]):
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {assignment!r}: {(given[i] if len(given) == len(parts) else p)!r} is not a section")
        node = nxt
    node[parts[-1]] = parse_value(value)


def read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p}: not found")
    if not p.is_file():
        raise ConfigError(f"config file {p}: is a directory, not a YAML/JSON file" if p.is_dir()
                          else f"config file {p}: not a regular file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {p}: cannot parse: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping at the top level")
    return data


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v
