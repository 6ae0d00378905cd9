"""One configuration schema for every job (pydantic v2).

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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from omnivad.errors import ConfigError

DEFAULT_HOME = os.environ.get("OMNIVAD_HOME", os.path.join(os.path.expanduser("~"), ".omnivad"))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CorpusConfig(Section):
    uri: str = Field(default=os.path.join(DEFAULT_HOME, "demo-corpus"), description="corpus root (path or s3://)")
    domains: list[str] | None = Field(default=None, description="domains to use (default: all in the corpus)")
    synth_if_missing: bool = Field(default=True, description="make the demo synthetic corpus when uri is absent")


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
    method: str = Field(default="nullang-mil", description="registered method name")
    hidden: int = Field(default=128, ge=1, description="width of the FC layer before the heads")
    ang_scale: float = Field(default=1.0, gt=0, description="logit scale of NullAng (Eq. 4 has 1)")
    dropout: float = Field(default=0.7, ge=0, lt=1)
    unseen_finetune: Literal["max", "new-head"] = Field(
        default="max",
        description="A14: fine-tune an unseen target on the max over heads, or on a new head cloned from the most similar one",
    )


class LossConfig(Section):
    k: int = Field(default=3, ge=1, description="top-K snippets per video")
    margin: float = Field(default=0.3, ge=0.0, le=1.5, description="NullAng angular margin m (radians)")
    ac: bool = Field(default=True, description="train the Abnormal-Conflict classifier")
    ac_weight: float = Field(default=10.0, ge=0.0, description="lambda")
    tau: float = Field(default=0.3, ge=0.0, le=2.0, description="AC spread threshold")
    ac_rule: Literal["diff", "std", "fixed"] = "diff"
    ac_band: tuple[float, float] = Field(default=(0.4, 0.7), description="single-head AC pseudo-label band")
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    ac_abnormal_weight: Literal["off", "adaptation", "always", "one-plus"] = "adaptation"
    topk_score: Literal["abnormal", "combined"] = Field(default="abnormal", description="A6: what picks NullAng's top-K")

    @field_validator("ac_band")
    @classmethod
    def _band(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] < v[1] <= 1.0:
            raise ValueError("expected 0 <= low < high <= 1")
        return v


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


# --- Method and job sections. Each is owned by one method/job package; fields are documented there. ---


class BNWVADConfig(Section):
    """BN-WVAD (``model.method=bn-wvad``), ../shared/specs/bn_wvad.md."""


class CoMoConfig(Section):
    """CLAV+CoMo (``model.method=como``), ../shared/specs/clav_como.md."""


class MMILConfig(Section):
    """Sultani MIL ranking baseline (``model.method=mmil``)."""


class TuneConfig(Section):
    """Ray Tune + Optuna hyperparameter search (``jobs/tune.py``)."""


class UVADConfig(Section):
    """Unsupervised wOCC–WS interleaving (``jobs/uvad.py``), ../shared/specs/wocc_ws.md."""


class VideoConfig(Section):
    """Raw video decoding and feature extraction (``jobs/extract.py``)."""


class ZxVADConfig(Section):
    """Zero-shot cross-domain zxVAD on raw frames (``jobs/zxvad.py``), ../shared/specs/zxvad.md."""


class Config(Section):
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    bn_wvad: BNWVADConfig = Field(default_factory=BNWVADConfig)
    como: CoMoConfig = Field(default_factory=CoMoConfig)
    mmil: MMILConfig = Field(default_factory=MMILConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    uvad: UVADConfig = Field(default_factory=UVADConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    zxvad: ZxVADConfig = Field(default_factory=ZxVADConfig)


#: Applied under the defaults when a job gets neither ``--config`` nor ``--corpus`` (the demo corpus):
#: a few minutes on 2 CPUs instead of the paper's 15k iterations at lr 5e-5.
DEMO_PROFILE: dict[str, Any] = {
    "train": {"steps": 600, "lr": 1e-3, "eval_every": 100, "checkpoint_every": 200, "log_every": 100,
              "finetune_steps": 200, "e4_steps": 200},
    "protocol": {"folds": 1},
}


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
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


def apply_override(data: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: empty field name in {key!r}")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {assignment!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = parse_value(value)


def read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p}: not found")
    text = p.read_text()
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
    """Defaults ← ``base`` ← file ← overrides, validated."""
    data: dict[str, Any] = json.loads(json.dumps(base)) if base else {}
    if path:
        _deep_merge(data, read_file(path))
    for o in overrides or []:
        apply_override(data, o)
    origin = f" ({path})" if path else ""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None


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
