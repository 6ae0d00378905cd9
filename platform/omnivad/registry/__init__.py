"""Model registry and scheduled retraining (``jobs/retrain.py``)."""

from omnivad.registry.registry import (
    Change,
    DataSnapshot,
    DomainData,
    DomainMetrics,
    GateDecision,
    ModelVersion,
    Registry,
    RegistryError,
    detect_change,
    load_registry,
    promotion_gate,
    registry_uri,
    save_registry,
    snapshot_of,
    stale_baselines,
)
from omnivad.registry.retrain import RetrainOutcome, add_retrain_args, retrain, retrain_main

__all__ = [
    "Change", "DataSnapshot", "DomainData", "DomainMetrics", "GateDecision", "ModelVersion", "Registry",
    "RegistryError", "RetrainOutcome", "add_retrain_args", "detect_change", "load_registry", "promotion_gate",
    "registry_uri", "retrain", "retrain_main", "save_registry", "snapshot_of", "stale_baselines",
]
