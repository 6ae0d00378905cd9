"""Search spaces: config fields (``tune.space``) to Ray Tune domains, and sampled values back to a config.

A parameter is a dotted config path (``loss.tau``) with bounds. One derived parameter exists:
``loss.topk_ratio`` (the top-K as a share of the ``data.segments`` snippets) sets
``loss.k = max(1, round(ratio * data.segments))``.
"""

from __future__ import annotations

from typing import Any

from omnivad.config import Config, SearchParam, dump
from omnivad.errors import ConfigError

TOPK_RATIO = "loss.topk_ratio"


def default_space(method: str) -> list[SearchParam]:
    """The issue's defaults: τ, λ (log), m, top-K ratio, lr (log); BN-WVAD's ρ_s, ρ_b for ``bn-wvad``."""
    space = [
        SearchParam(path="loss.tau", low=0.1, high=0.6),
        SearchParam(path="loss.ac_weight", low=0.1, high=20.0, log=True),
        SearchParam(path="loss.margin", low=0.0, high=0.6),
        SearchParam(path=TOPK_RATIO, low=1 / 32, high=1 / 4),
        SearchParam(path="train.lr", low=1e-5, high=1e-3, log=True),
    ]
    if method == "bn-wvad":
        space += [
            SearchParam(path="bn_wvad.rho_sample", low=0.05, high=0.5),
            SearchParam(path="bn_wvad.rho_batch", low=0.05, high=0.5),
        ]
    return space


def resolve_space(cfg: Config) -> list[SearchParam]:
    """``tune.space`` or the method's default space, every path checked against the config schema."""
    space = cfg.tune.space if cfg.tune.space is not None else default_space(cfg.model.method)
    if not space:
        raise ConfigError("tune.space: empty search space")
    data = dump(cfg)
    seen: set[str] = set()
    for i, p in enumerate(space):
        if p.path in seen:
            raise ConfigError(f"tune.space[{i}].path: {p.path!r} appears twice")
        seen.add(p.path)
        if p.path == TOPK_RATIO:
            continue
        node: Any = data
        for part in p.path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"tune.space[{i}].path: {p.path!r} is not a config field")
            node = node[part]
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
        if p.path == TOPK_RATIO:
            out[p.path] = cfg.loss.k / cfg.data.segments
            continue
        node: Any = data
        for part in p.path.split("."):
            node = node[part]
        if node is not None:  # an optional field left at its default is sampled like the rest
            out[p.path] = int(node) if p.type == "int" else float(node)
    return out


def apply_params(cfg: Config, params: dict[str, Any]) -> Config:
    """A new config with the sampled values set (validated: a value out of a field's range is an error)."""
    from omnivad.config import _format_errors
    from pydantic import ValidationError

    data = dump(cfg)
    for path, value in params.items():
        if path == TOPK_RATIO:
            data["loss"]["k"] = max(1, round(float(value) * cfg.data.segments))
            continue
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, " (search parameters)")) from None
