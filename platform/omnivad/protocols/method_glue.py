"""Everything protocols/ knows about methods, in one place: a run's tag, whether it has an
Abnormal-Conflict classifier, a ``--methods`` entry's overrides and what ``results.json`` records about
the method. The other protocol modules call only these functions; each body is one Method hook's job
(``get_method(name).tag(cfg)``, ``.has_ac(cfg)``, ``.entry_overrides(entry)``, ``.run_fields(cfg)``)."""

from __future__ import annotations

from typing import Any

from omnivad.config import Config
from omnivad.errors import ConfigError


def method_tag(cfg: Config) -> str:
    """``nullang-mil+ac``, ``nullang-mil@bn-wvad+ac`` (non-default trunk), ``bn-wvad`` (a method without AC)."""
    from omnivad.methods.registry import get_method

    trunked = getattr(get_method(cfg.model.method), "trunked", False)
    trunk = f"@{cfg.model.trunk}" if trunked and cfg.model.trunk != "mdvad" else ""
    return cfg.model.method + trunk + ("+ac" if cfg.loss.ac and trunked else "")


def has_ac(cfg: Config) -> bool:
    """Whether the method has an Abnormal-Conflict classifier at all (MDVAD heads: ``mil``, ``null-mil``,
    ``nullang-mil`` on any trunk); BN-WVAD, MMIL and CoMo have none, whatever ``loss.ac`` says."""
    from omnivad.methods.registry import get_method

    return bool(getattr(get_method(cfg.model.method), "trunked", False))


def run_fields(cfg: Config) -> dict[str, Any]:
    """What ``results.json`` records about the method: ``method``, ``trunk``, ``tag`` and, for a method with
    an Abnormal-Conflict classifier, ``ac``."""
    out: dict[str, Any] = {"method": cfg.model.method, "trunk": cfg.model.trunk, "tag": method_tag(cfg)}
    if has_ac(cfg):
        out["ac"] = cfg.loss.ac
    return out


def parse_method_entry(entry: str) -> dict[str, Any]:
    """One ``--methods`` entry → config overrides: ``METHOD[@TRUNK][+ac|+noac]``.

    ``bn-wvad``, ``mmil``, ``como``: the method alone (its own single-head model). ``nullang-mil``, ``null-mil``,
    ``mil``: MDVAD heads on the default trunk; ``nullang-mil@bn-wvad``: the same heads and AC on BN-WVAD's encoder
    (any registered trunk). ``+ac``/``+noac`` force the Abnormal-Conflict classifier on/off (default: ``loss.ac``).
    """
    from omnivad.methods.registry import get_method
    from omnivad.methods.trunks import trunk_entry

    text = entry.strip()
    ac: bool | None = None
    for suffix, value in (("+noac", False), ("+ac", True)):
        if text.endswith(suffix):
            text, ac = text[: -len(suffix)], value
            break
    name, _, trunk = text.partition("@")
    method = get_method(name)
    trunked = getattr(method, "trunked", False)
    out: dict[str, Any] = {"model.method": name}
    if trunk:
        if not trunked:
            raise ConfigError(f"--methods {entry!r}: {name!r} has no trunk to replace (trunks go under mil, null-mil, nullang-mil)")
        trunk_entry(trunk)
        out["model.trunk"] = trunk
    elif trunked:
        out["model.trunk"] = "mdvad"
    if ac is not None:
        if not trunked:
            raise ConfigError(f"--methods {entry!r}: {name!r} has no Abnormal-Conflict classifier")
        out["loss.ac"] = ac
    elif not trunked:
        out["loss.ac"] = False  # AC is an MDVAD head option: off, so the run's tag and hash say what ran
    return out
