"""One configuration schema for every job (pydantic v2), built from the registered sections.

This module holds the cross-cutting sections (corpus, benchmark, model.method, data, train, scaling, protocol,
metrics, storage, ray); every other section is owned and registered by its package (``methods/<name>/config.py``,
``uvad/config.py``, ``video/config.py``, ``zxvad/config.py``, ``tune/config.py``) through
:func:`omnivad.sections.register_section`, and :data:`Config` has one field per registered section. Old keys
(``loss.tau``, ``model.trunk``, ...) are documented aliases (:mod:`omnivad.sections`), resolved here.

A config is built from defaults, a preset (:mod:`omnivad.presets`), a YAML/JSON file, then ``--set a.b=c`` overrides.
Every error names the field (``train.lr``) and says what was expected. The resolved config is saved
next to every result (:func:`dump`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from omnivad.config_files import (  # noqa: F401  (re-exported: config.apply_override, config.parse_value, ...)
    _deep_merge,
    _format_errors,
    apply_override,
    flag_overrides,
    parse_value,
    read_file,
)
from omnivad.errors import ConfigError
from omnivad.presets import read_preset
from omnivad.sections import (  # noqa: F401  (register_section, Section: the owners' API, re-exported)
    Section,
    build_root,
    identity_excluded,
    register_section,
    registered_checks,
    registered_sections,
    resolve_aliases,
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
    volume: Literal["balanced", "original"] = Field(default="balanced", description="balanced: the same sampled volume per domain (MDVAD Table 4); original: each domain's whole own training split, no merged sets (Table 2)")
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
    max_failures: int = Field(default=3, ge=-1, description="worker failures Ray Train recovers from (from the latest checkpoint); -1: unlimited")
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="autocast of training steps and scoring (engine/precision.py)")
    compile: bool = Field(default=False, description="torch.compile the model for training steps (CPU and GPU)")
    grad_clip: float | None = Field(default=None, gt=0, description="clip each optimizer's gradient norm to this before its step (every method; BN-WVAD's code: 1.0); None: no clipping")


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
    name: Literal["single", "E1", "E2", "E3", "E4", "ubnormal-open"] = "E1"
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
from omnivad.tune.config import SearchParam  # noqa: E402,F401  (re-exported: omnivad.config.SearchParam)


Config = build_root()
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


def load(path: str | Path | None = None, overrides: list[str] | None = None, base: dict[str, Any] | None = None, preset: str | None = None) -> Config:
    """Defaults ← ``base`` ← ``preset`` (a shipped preset's name) ← file ← overrides, validated. Aliased keys are
    moved to their current field at every step (a later step wins whichever name it uses); errors name a field as given."""
    data: dict[str, Any] = json.loads(json.dumps(base)) if base else {}
    renamed = resolve_aliases(data)
    for given in (read_preset(preset) if preset else None, read_file(path) if path else None):
        if given is not None:
            renamed.update(resolve_aliases(given))
            _deep_merge(data, given)
    for o in overrides or []:
        key = o.split("=", 1)[0].strip()
        if "=" in o and resolve_path(key) != key:
            renamed[resolve_path(key)] = key
        apply_override(data, o)
    origin = f" ({', '.join(x for x in (preset and f'preset {preset}', path and str(path)) if x)})" if preset or path else ""
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


def dump(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (saved next to every result)."""
    return cfg.model_dump(mode="json")


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(dump(cfg), sort_keys=False)
