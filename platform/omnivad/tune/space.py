"""Search spaces: config fields (``tune.space``) to Ray Tune domains, and sampled values back to a config.

A parameter is a dotted config path (``train.lr``; the documented aliases of old keys are followed) with bounds, or
a derived pseudo-field a section registers (:func:`omnivad.sections.register_derived`, e.g. a top-K ratio that sets
an integer K). The default space is the method's own (``Method.default_search_space``); no method is named here.
"""

from __future__ import annotations

from typing import Any

from omnivad.config import Config, dump
from omnivad.errors import ConfigError
from omnivad.sections import derived, resolve_path
from omnivad.tune.config import SearchParam

def default_space(method: str) -> list[SearchParam]:
    """The registered method's default search space."""
    from omnivad.methods.registry import get_method

    return get_method(method).default_search_space()


def _field(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for part in resolve_path(path).split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def resolve_space(cfg: Config) -> list[SearchParam]:
    """``tune.space`` or the method's default space, every path checked against the config schema."""
    space = cfg.tune.space if cfg.tune.space is not None else default_space(cfg.model.method)
    if not space:
        raise ConfigError("tune.space: empty search space")
    data = dump(cfg)
    seen: set[str] = set()
    for i, p in enumerate(space):
        if resolve_path(p.path) in seen:
            raise ConfigError(f"tune.space[{i}].path: {p.path!r} appears twice")
        seen.add(resolve_path(p.path))
        if derived(p.path) is not None:
            continue
        found, node = _field(data, p.path)
        if not found:
            raise ConfigError(f"tune.space[{i}].path: {p.path!r} is not a config field")
        if node is not None and (isinstance(node, bool) or not isinstance(node, (int, float))):  # None: "method default"
            raise ConfigError(f"tune.space[{i}].path: {p.path!r} is not numeric (got {node!r})")
    return space


def tune_domains(space: list[SearchParam]) -> dict[str, Any]:
    """``{path: tune domain}`` for ``Tuner(param_space=...)``."""
    from ray import tune

    out: dict[str, Any] = {}
    for p in space:
        if p.type == "int":
            out[p.path] = tune.lograndint(int(p.low), int(p.high) + 1) if p.log else tune.randint(int(p.low), int(p.high) + 1)
        else:
            out[p.path] = tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
    return out


def current_values(cfg: Config, space: list[SearchParam]) -> dict[str, float]:
    """The config's own values of the searched parameters (the search's start point; fields left at
    ``None`` are not fixed)."""
    data = dump(cfg)
    out: dict[str, float] = {}
    for p in space:
        d = derived(p.path)
        if d is not None:
            out[p.path] = d.read(cfg)
            continue
        node = _field(data, p.path)[1]
        if node is not None:  # an optional field left at its default is sampled like the rest
            out[p.path] = int(node) if p.type == "int" else float(node)
    return out


def apply_params(cfg: Config, params: dict[str, Any]) -> Config:
    """A new config with the sampled values set (validated: a value out of a field's range is an error)."""
    from pydantic import ValidationError

    from omnivad.config import _format_errors

    data = dump(cfg)
    renamed: dict[str, str] = {}
    for path, value in params.items():
        d = derived(path)
        if d is not None:
            d.write(data, value, cfg)
            continue
        *parents, leaf = resolve_path(path).split(".")
        renamed[resolve_path(path)] = path
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, " (search parameters)", renamed)) from None
