"""One configuration schema for every job (pydantic v2), built from the registered sections.

This module holds the cross-cutting sections (corpus, benchmark, model.method, data, train, scaling, protocol,
metrics, storage, ray); every other section is owned and registered by its package (``methods/<name>/config.py``,
``uvad/config.py``, ``video/config.py``, ``zxvad/config.py``, ``tune/config.py``) through
:func:`omnivad.sections.register_section`, and :data:`Config` has one field per registered section. Old keys
(``loss.tau``, ``model.trunk``, ...) are documented aliases (:mod:`omnivad.sections`), resolved here.

A config is built from defaults, then a YAML/JSON file, then ``--set a.b=c`` overrides, in that order.
Every error names the field (``train.lr``) and says what was expected. The resolved config is saved
next to every result (:func:`dump`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, model_validator

from omnivad.errors import ConfigError
from omnivad.sections import (  # noqa: F401  (register_section, Section: the owners' API, re-exported)
    Section,
    _Link,
    identity_excluded,
    register_section,
    registered_checks,
    registered_sections,
    resolve_path,
)

DEFAULT_HOME = os.environ.get("OMNIVAD_HOME", os.path.join(os.path.expanduser("~"), ".omnivad"))


class CorpusConfig(Section):
    uri: str = Field(default=os.path.join(DEFAULT_HOME, "demo-corpus"), description="corpus root (path or s3://)")
    domains: list[str] | None = Field(default=None, description="domains to use (default: all in the corpus)")
    synth_if_missing: bool = Field(
        default=True,
        description="make the synthetic demo corpus when uri is its default location (OMNIVAD_HOME/demo-corpus) and "
        "absent; an explicit uri that holds no corpus is always an error",
    )
    verify: bool = Field(default=True, description="check every corpus part read against the sha256 in the manifest")


class BenchmarkConfig(Section):
    volume_normal: int | None = Field(default=None, ge=1, description="normal training videos per domain (default: smallest domain's)")
    volume_abnormal: int | None = Field(default=None, ge=1, description="abnormal training videos per domain (default: smallest domain's)")
    folds: int = Field(default=3, ge=1)
    seed: int = 0
    category_balance: Literal["proportional", "equal"] = Field(
        default="proportional", description="abnormal sampling keeps category shares, or equalises counts (MDVAD §2.3)"
    )
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0, description="validation share carved from each training set")
    low_shot_fraction: float = Field(default=0.1, gt=0.0, le=1.0, description="E3 subset size as a share of the training set")
    merge: dict[str, list[str]] = Field(default_factory=dict, description="auxiliary sets merged into a domain, e.g. {TAD: [CADP]}")
    aux_policy: Literal["fill", "pool"] = Field(
        default="fill", description="merged sets: fill = own videos first, aux fills the remainder; pool = sample the union"
    )


class ModelConfig(Section):
    method: str = Field(default="nullang-mil", description="registered method name (omnivad.methods.registry)")


class DataConfig(Section):
    segments: int = Field(default=32, ge=1, description="T: segments per training video")
    resample: Literal["mean", "nearest"] = Field(default="mean", description="A13: RTFM mean-pooled chunks or nearest snippet")
    batch_per_class: int = Field(default=32, ge=1, description="normal (and abnormal) videos per step, split over domains")
    crops: Literal["average", "all", "random"] = Field(default="average", description="A12: how training uses crops")


class TrainConfig(Section):
    steps: int = Field(default=15000, ge=1, description="iterations of single/E1/E2 runs (MDVAD A11)")
    lr: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    seed: int = 0
    eval_every: int = Field(default=100, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    log_every: int = Field(default=50, ge=1)
    selection: Literal["final", "best-val", "best-test"] = Field(
        default="best-val", description="model selection; best-test exists only to reproduce the papers"
    )
    finetune_steps: int = Field(default=1000, ge=1, description="E3 low-shot fine-tuning iterations (A11)")
    e4_steps: int = Field(default=5000, ge=1, description="E4 full fine-tuning iterations (A11)")
    max_failures: int = Field(
        default=3, ge=-1, description="worker failures Ray Train recovers from (restart from the latest checkpoint); -1: unlimited"
    )


class MetricsConfig(Section):
    """How test (and validation) scores are compared with the frame ground truth (omnivad.metrics)."""

    align: Literal["scores", "gt"] = Field(
        default="scores",
        description="scores: repeat each snippet score 16x and truncate/pad the scores to every gt frame (MDVAD, "
        "BN-WVAD); gt: truncate/pad the gt to 16*T frames (RTFM's test_10crop.py)",
    )
    domain_metric: dict[str, Literal["auc", "ap"]] = Field(
        default_factory=dict,
        description="headline metric of a domain in the tables (XD-style: ap); overrides the corpus manifest's metric",
    )


class ScalingConfig(Section):
    workers: int = Field(default=1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float = Field(default=0.0, ge=0)
    resources_per_worker: dict[str, float] = Field(default_factory=dict)
    max_concurrent_runs: int = Field(default=0, ge=0, description="0: as many as resources allow")


class ProtocolConfig(Section):
    name: Literal["single", "E1", "E2", "E3", "E4"] = "E1"
    folds: int = Field(default=1, ge=1, description="folds to run (≤ benchmark.folds)")
    targets: list[str] | None = Field(default=None, description="E2-E4 targets (default: all domains)")
    e4_start: Literal["E1", "E2", "both"] = "both"


class StorageConfig(Section):
    out: str = Field(default=os.path.join(DEFAULT_HOME, "runs"), description="results and checkpoints root (path or s3://)")


class RayConfig(Section):
    address: str | None = Field(default=None, description="Ray address; None starts or joins a local Ray")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of an embedded local Ray")


_CROSS_CUTTING: dict[str, type[Section]] = {
    "corpus": CorpusConfig, "benchmark": BenchmarkConfig, "model": ModelConfig, "data": DataConfig,
    "train": TrainConfig, "scaling": ScalingConfig, "protocol": ProtocolConfig, "metrics": MetricsConfig,
    "storage": StorageConfig, "ray": RayConfig,
}
for _name, _cls in _CROSS_CUTTING.items():
    register_section(_name, _cls)

import omnivad.plugins  # noqa: E402,F401  (the built-in owners register their sections: methods, uvad, video, ...)


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


def _build_root() -> type[_Root]:
    fields: dict[str, Any] = {name: (cls, Field(default_factory=cls)) for name, cls in registered_sections().items()}
    return create_model("Config", __base__=_Root, __module__=__name__, **fields)


Config = _build_root()
globals().update({cls.__name__: cls for cls in registered_sections().values()})  # from omnivad.config import UVADConfig


#: Config fields that cannot change a trained model's weights, left out of its identity
#: (:func:`omnivad.protocols.runner.config_hash`). Everything else is in the key, so a new field or a registered
#: section is covered without being listed anywhere (owners add their exclusions in ``register_section``). A whole section is named by its name, a field by ``section.field``.
IDENTITY_EXCLUDED: dict[str, str] = {
    "corpus.uri": "a location; the corpus content is in the key as its fingerprint",
    "corpus.synth_if_missing": "only decides whether a missing demo corpus is made",
    "corpus.verify": "only checks the parts' recorded sha256 while reading (a mismatch is an error)",
    "storage": "output locations",
    "ray": "the Ray address and the embedded Ray's CPUs",
    "protocol": "which runs a job plans; each run's own name (stage, fold, target) and split ids identify it",
    "train.log_every": "log cadence",
    "train.checkpoint_every": "checkpoint cadence (a resumed run replays the same data and RNG: same weights)",
    "train.max_failures": "recovery restarts from the latest checkpoint (same weights)",
    "scaling.cpus_per_worker": "placement",
    "scaling.gpus_per_worker": "placement",
    "scaling.resources_per_worker": "placement",
    "scaling.max_concurrent_runs": "how many runs share the cluster",
    "metrics.domain_metric": "which number a table shows first",
    **identity_excluded(),  # what the registered owners declared (e.g. the whole tune section)
}


def identity_fields(cfg: Config) -> dict[str, Any]:
    """The resolved config minus :data:`IDENTITY_EXCLUDED`: what shapes a trained model."""
    data = dump(cfg)
    for path in IDENTITY_EXCLUDED:
        section, _, name = path.partition(".")
        if not name:
            data.pop(section)
        else:
            data[section].pop(name)
    return data


#: Applied under the defaults when a job gets neither ``--config`` nor ``--corpus`` (the demo corpus):
#: a few minutes on 2 CPUs instead of the paper's 15k iterations at lr 5e-5.
DEMO_PROFILE: dict[str, Any] = {
    "train": {"steps": 600, "lr": 1e-3, "eval_every": 100, "checkpoint_every": 200, "log_every": 100,
              "finetune_steps": 200, "e4_steps": 200},
    "protocol": {"folds": 1},
}


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


def load(path: str | Path | None = None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> Config:
    """Defaults ← ``base`` ← file ← overrides, validated. Aliased keys (:func:`omnivad.sections.resolve_path`)
    are moved to their current field at every step, so a later step wins whichever name it uses; errors name a
    field the way it was given."""
    data: dict[str, Any] = json.loads(json.dumps(base)) if base else {}
    renamed = resolve_aliases(data)
    if path:
        given = read_file(path)
        renamed.update(resolve_aliases(given))
        _deep_merge(data, given)
    for o in overrides or []:
        key = o.split("=", 1)[0].strip()
        if "=" in o and resolve_path(key) != key:
            renamed[resolve_path(key)] = key
        apply_override(data, o)
    origin = f" ({path})" if path else ""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin, renamed)) from None
    check_registered(cfg, origin, renamed)
    return cfg


def check_registered(cfg: Config, origin: str = "", renamed: dict[str, str] | None = None) -> None:
    """Every name that must be registered (``model.method``, and what the owners check with
    :func:`omnivad.sections.register_check`: ``mdvad.trunk``, ``video.backbone``, ``uvad.ws``) is, checked when the
    config is resolved: before Ray starts or any data is read. The error names the field and the known names."""
    from omnivad.methods.registry import get_method

    try:
        get_method(cfg.model.method)
        for check in registered_checks():
            check(cfg)
    except ConfigError as exc:
        msg = str(exc)
        for new, old in (renamed or {}).items():
            msg = msg.replace(f"{new}:", f"{old}:")
        raise ConfigError(f"invalid config{origin}: {msg}") from None


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


def dump(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (saved next to every result)."""
    return cfg.model_dump(mode="json")


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(dump(cfg), sort_keys=False)
