"""The ``mlp_mil`` config section (registered by :mod:`omnivad.methods.mlp_mil`)."""

from __future__ import annotations

from pydantic import Field

from omnivad.sections import Section


class MLPMILConfig(Section):
    """The deliberately simple reference of the conflict study (``model.method=mlp-mil`` / ``mlp-null-mil``):
    crop-averaged features → Linear(C, hidden) → ReLU → Dropout → a linear head (shared, or one per domain) →
    sigmoid; top-K BCE on the video's own head (``benchmarks/conflict_study.py``, issue 17)."""

    hidden: int = Field(default=128, ge=1, description="width of the one hidden layer")
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0, description="dropout after the hidden layer (training only)")
    k: int = Field(default=3, ge=1, description="top-K snippets per video in the BCE")
