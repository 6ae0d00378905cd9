"""Everything protocols/ asks of a method, in one place: each function is one :class:`~omnivad.methods.base.Method`
hook of the configured method (``model.method``); the protocol modules call only these."""

from __future__ import annotations

from typing import Any

from omnivad.config import Config
from omnivad.methods.registry import entry_overrides, get_method


def method_tag(cfg: Config) -> str:
    """The run's method label (``Method.tag``), e.g. a head name with ``@TRUNK`` and ``+ac`` suffixes."""
    return get_method(cfg.model.method).tag(cfg)


def has_ac(cfg: Config) -> bool:
    """Whether the method has an Abnormal-Conflict classifier at all (``Method.has_ac``)."""
    return get_method(cfg.model.method).has_ac(cfg)


def run_fields(cfg: Config) -> dict[str, Any]:
    """What ``results.json`` records about the method: ``method``, ``trunk`` and ``tag`` first, then the rest of
    ``Method.run_fields`` (e.g. ``ac`` for a method with an Abnormal-Conflict classifier)."""
    fields = get_method(cfg.model.method).run_fields(cfg)
    head = {k: fields[k] for k in ("method", "trunk") if k in fields}
    return {**head, "tag": method_tag(cfg), **fields}


def parse_method_entry(entry: str) -> dict[str, Any]:
    """One ``--methods`` entry ``METHOD[@TRUNK][+ac|+noac]`` → config overrides (``Method.entry_overrides``)."""
    return entry_overrides(entry)
