"""The model registry: versions of the general model, what data each saw, how it scored, which is current.

One JSON file, ``<storage.out>/registry/registry.json`` (local path or ``s3://``), written atomically
(temporary file + ``os.replace`` locally, one PUT on S3). Everything here is pure Python and pydantic;
training lives in :mod:`omnivad.registry.retrain`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from omnivad import storage
from omnivad.errors import OmnivadError, StorageError

REGISTRY_FORMAT = "omnivad-registry"
REGISTRY_VERSION = 1
_VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")


class RegistryError(OmnivadError):
    """The registry file is missing a field, malformed, or the requested change is not possible."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainMetrics(_Strict):
    """Metrics of one domain on one split (validation or test), as fractions (0.95 = 95 AUC points)."""

    auc: float = Field(ge=0.0, le=1.0)
    ap: float = Field(ge=0.0, le=1.0)


class DomainData(_Strict):
    """What the corpus held for one domain: video counts per split and a hash of its test parts."""

    videos: dict[str, int] = Field(default_factory=dict, description="split -> number of videos")
    test_hash: str = Field(default="", description="hash of the domain's test parts (changes when its test set does)")


class DataSnapshot(_Strict):
    """The corpus a version was trained and tested on."""

    corpus_uri: str
    fingerprint: str
    domains: dict[str, DomainData]


class ModelVersion(_Strict):
    version: str
    model_uri: str
    method: str
    domains: list[str] = Field(description="the model's heads, in order")
    snapshot: DataSnapshot
    val_metrics: dict[str, DomainMetrics] = Field(
        default_factory=dict, description="validation metrics (the E1 fold-0 carve-out): what the promotion gate compares")
    test_metrics: dict[str, DomainMetrics] = Field(
        default_factory=dict, description="TEST metrics: recorded for reporting, never consulted by the promotion gate")
    parent: str | None = Field(default=None, description="the version it was warm-started from")
    created: str
    status: Literal["promoted", "rejected"]
    reason: str = ""
    steps: int = 0
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Registries written before the gate moved to validation hold test metrics as ``metrics``."""
        if isinstance(data, dict) and "metrics" in data and "test_metrics" not in data:
            data = {**data, "test_metrics": data["metrics"]}
            data.pop("metrics")
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelVersion:
        if not _VERSION_RE.match(self.version):
            raise ValueError(f"version {self.version!r}: expected v1, v2, ...")
        if not self.domains:
            raise ValueError(f"version {self.version}: domains is empty")
        return self

    @property
    def number(self) -> int:
        return int(self.version[1:])


class Registry(_Strict):
    format: Literal["omnivad-registry"] = REGISTRY_FORMAT
    registry_version: int = REGISTRY_VERSION
    current: str | None = None
    versions: list[ModelVersion] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Registry:
        seen: set[str] = set()
        for v in self.versions:
            if v.version in seen:
                raise ValueError(f"versions: {v.version} appears twice")
            seen.add(v.version)
        if self.current is not None:
            if self.current not in seen:
                raise ValueError(f"current: {self.current!r} is not a recorded version")
            if self.get(self.current).status != "promoted":
                raise ValueError(f"current: {self.current!r} has status {self.get(self.current).status!r}, not promoted")
        return self

    def get(self, version: str) -> ModelVersion:
        for v in self.versions:
            if v.version == version:
                return v
        raise RegistryError(f"no version {version!r} in the registry ({', '.join(v.version for v in self.versions) or 'empty'})")

    @property
    def current_version(self) -> ModelVersion | None:
        return self.get(self.current) if self.current else None

    @property
    def latest(self) -> ModelVersion | None:
        return self.versions[-1] if self.versions else None

    def next_version(self) -> str:
        return f"v{max((v.number for v in self.versions), default=0) + 1}"

    def record(self, entry: ModelVersion) -> Registry:
        """A new registry with ``entry`` appended (and made current when promoted)."""
        if any(v.version == entry.version for v in self.versions):
            raise RegistryError(f"version {entry.version} is already recorded")
        current = entry.version if entry.status == "promoted" else self.current
        return Registry(current=current, versions=[*self.versions, entry])


# --------------------------------------------------------------------------------------------------
# Storage


def registry_uri(out: str) -> str:
    """Where the registry of a storage root lives: ``<out>/registry/registry.json``."""
    return storage.join(out, "registry", "registry.json")


def load_registry(uri: str) -> Registry:
    """Read the registry at ``uri``; an empty registry when the file does not exist yet."""
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        return Registry()
    try:
        raw = storage.read_json(fs, path)
    except StorageError as exc:
        raise RegistryError(f"registry {uri}: {exc}") from exc
    if not isinstance(raw, dict):
        raise RegistryError(f"registry {uri}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("format") != REGISTRY_FORMAT:
        raise RegistryError(f"registry {uri}: field 'format' is {raw.get('format')!r}, expected {REGISTRY_FORMAT!r}")
    try:
        return Registry.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise RegistryError(f"registry {uri}: invalid field(s): {fields}") from exc


def registry_bytes(reg: Registry) -> bytes:
    return (json.dumps(reg.model_dump(mode="json"), indent=2) + "\n").encode()


def save_registry(uri: str, reg: Registry, expect: bytes | None = None) -> None:
    """Write ``reg`` atomically. With ``expect`` (the bytes read before a long retrain; ``b""`` for
    "no file"), refuse to overwrite a registry someone else changed in the meantime."""
    fs, path = storage.filesystem(uri)
    if expect is not None:
        now = read_registry_bytes(uri)
        if now != expect:
            raise RegistryError(f"registry {uri}: changed by another process during this retrain; nothing written")
    storage.write_bytes_atomic(fs, path, registry_bytes(reg))


def read_registry_bytes(uri: str) -> bytes:
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        return b""
    with fs.open(path, "rb") as fh:
        return fh.read()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# Data snapshots and what changed


def snapshot_of(corpus: Any, domains: list[str]) -> DataSnapshot:
    """The snapshot of ``domains`` of a :class:`~omnivad.corpus.format.Corpus` (reads only its manifest)."""
    out: dict[str, DomainData] = {}
    for d in domains:
        entry = corpus.manifest.domains[d]
        test_parts = sorted(p["sha256"] for p in entry.splits["test"].parts) if "test" in entry.splits else []
        out[d] = DomainData(
            videos={s: int(st.videos) for s, st in sorted(entry.splits.items())},
            test_hash=hashlib.sha256("|".join(test_parts).encode()).hexdigest()[:16] if test_parts else "",
        )
    return DataSnapshot(corpus_uri=corpus.uri, fingerprint=corpus.fingerprint(), domains=out)


@dataclass
class Change:
    """What a retrain would do. ``kind``: ``initial`` (no current model), ``new-domains``, ``new-data``
    (same domains, different corpus fingerprint), ``nothing`` (see ``reason``)."""

    kind: Literal["initial", "new-domains", "new-data", "nothing"]
    new_domains: list[str] = field(default_factory=list)
    reason: str = ""


def detect_change(reg: Registry, snap: DataSnapshot) -> Change:
    """Compare the corpus snapshot with the current version (and the last rejected candidate).

    Nothing new when the current model has exactly the snapshot's domains and was trained on the same
    corpus fingerprint, or when the latest version is a rejected candidate for exactly this data (rerunning
    would train the same candidate again and reject it again).
    """
    cur = reg.current_version
    domains = list(snap.domains)
    if cur is None:
        last = reg.latest
        if last is not None and _same_data(last, snap):
            return Change("nothing", reason=f"candidate {last.version} for this data was rejected: {last.reason}")
        return Change("initial", new_domains=domains)
    gone = [d for d in cur.domains if d not in snap.domains]
    if gone:
        raise RegistryError(
            f"current version {cur.version} has heads for {', '.join(gone)}, which the corpus no longer has "
            f"({snap.corpus_uri}); retraining would silently drop them"
        )
    new = [d for d in domains if d not in cur.domains]
    if not new and snap.fingerprint == cur.snapshot.fingerprint:
        return Change("nothing", reason=f"current {cur.version} already covers {', '.join(cur.domains)} at corpus {snap.fingerprint}")
    last = reg.latest
    if last is not None and last.status == "rejected" and _same_data(last, snap):
        return Change("nothing", reason=f"candidate {last.version} for this data was already rejected: {last.reason}")
    if new:
        return Change("new-domains", new_domains=new)
    return Change("new-data")


def _same_data(v: ModelVersion, snap: DataSnapshot) -> bool:
    return v.snapshot.fingerprint == snap.fingerprint and sorted(v.domains) == sorted(snap.domains)


def stale_baselines(cur: ModelVersion, snap: DataSnapshot) -> list[str]:
    """Domains of ``cur`` whose test set changed since it was evaluated: their recorded metrics are not a
    fair baseline, so the current model is re-evaluated on them before the gate."""
    return [
        d for d in cur.domains
        if d in snap.domains and (d not in cur.test_metrics or snap.domains[d].test_hash != cur.snapshot.domains.get(d, DomainData()).test_hash)
    ]


# --------------------------------------------------------------------------------------------------
# The promotion gate


@dataclass
class GateDecision:
    promote: bool
    reason: str
    drops: dict[str, float] = field(default_factory=dict)  # domain -> AUC drop in points (positive = worse)


def promotion_gate(
    baseline: dict[str, DomainMetrics] | dict[str, dict[str, float]],
    candidate: dict[str, DomainMetrics] | dict[str, dict[str, float]],
    tolerance: float = 1.0,
) -> GateDecision:
    """Promote ``candidate`` unless some baseline domain's AUC drops by more than ``tolerance`` AUC points
    (1.0 point = 0.01 AUC). Domains only the candidate has (new heads) are not compared; a baseline
    domain the candidate was not evaluated on rejects it."""
    if tolerance < 0:
        raise ValueError(f"tolerance: expected >= 0 AUC points, got {tolerance}")

    def auc(m: Any) -> float:
        return float(m.auc if isinstance(m, DomainMetrics) else m["auc"])

    missing = [d for d in baseline if d not in candidate]
    if missing:
        return GateDecision(False, f"rejected: no candidate metrics for {', '.join(missing)}")
    drops = {d: round(100.0 * (auc(baseline[d]) - auc(candidate[d])), 6) for d in baseline}
    bad = {d: x for d, x in drops.items() if x > tolerance + 1e-9}
    if bad:
        worst = ", ".join(f"{d} AUC {100 * auc(baseline[d]):.2f} -> {100 * auc(candidate[d]):.2f} (-{x:.2f} points)"
                          for d, x in sorted(bad.items(), key=lambda kv: -kv[1]))
        return GateDecision(False, f"rejected: {worst} > tolerance {tolerance:g}", drops)
    if not drops:
        return GateDecision(True, "promoted: no previous version to compare with", drops)
    worst_d = max(drops, key=lambda d: drops[d])
    return GateDecision(True, f"promoted: largest AUC change {worst_d} {-drops[worst_d]:+.2f} points (tolerance {tolerance:g})", drops)
