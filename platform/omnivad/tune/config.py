"""The ``tune`` config section (Ray Tune + Optuna search), registered here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from omnivad.sections import Section, register_section


class SearchParam(Section):
    """One searched hyperparameter: a config field (``train.lr``, or a field of a method's section) or a derived
    field a section registers (e.g. a top-K ratio that sets the top-K count from ``data.segments``)."""

    path: str = Field(description="dotted config field, e.g. train.lr or SECTION.FIELD of the method's section (old keys are aliases), or a derived field the section registers (a top-K ratio sets K = max(1, round(ratio * data.segments)))")
    low: float = Field(description="lower bound (inclusive)")
    high: float = Field(description="upper bound (inclusive)")
    log: bool = Field(default=False, description="sample uniformly in log space (low > 0)")
    type: Literal["float", "int"] = Field(default="float", description="float or integer values")

    @model_validator(mode="after")
    def _range(self) -> "SearchParam":
        if not self.high > self.low:
            raise ValueError(f"{self.path}: expected high > low (got low={self.low}, high={self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.path}: log-scale search needs low > 0 (got low={self.low})")
        return self


class TuneConfig(Section):
    """Ray Tune + Optuna hyperparameter search (``jobs/tune.py``)."""

    objective: Literal["E1", "E2", "both"] = Field(
        default="E1",
        description="E1: mean held-in validation AUC; E2: mean over held-out targets of the target's validation AUC; "
        "both: a two-objective search returning the Pareto front",
    )
    trials: int = Field(default=20, ge=1, description="number of trials (the start point included)")
    space: list[SearchParam] | None = Field(
        default=None, description="searched parameters (default: the method's default_search_space())"
    )
    sampler: Literal["tpe", "random"] = Field(default="tpe", description="Optuna sampler (seeded with tune.seed)")
    seed: int = Field(default=0, description="sampler seed")
    start_from_config: bool = Field(default=True, description="evaluate the config's own values first (points_to_evaluate)")
    asha: bool = Field(default=True, description="ASHA early stopping on the objective's validation AUC")
    asha_multi: Literal["off", "first"] = Field(
        default="off", description="objective=both: no early stopping, or ASHA on the E1 objective only"
    )
    grace_steps: int | None = Field(default=None, ge=1, description="ASHA grace period in training steps (default: train.eval_every)")
    reduction_factor: float = Field(default=2.0, gt=1.0, description="ASHA reduction factor")
    max_concurrent_trials: int = Field(default=0, ge=0, description="0: as many as cluster CPUs allow (workers + 1 CPU per trial)")
    fold: int = Field(default=0, ge=0, description="benchmark fold whose train/validation splits the trials use")
    targets: list[str] | None = Field(default=None, description="E2 held-out targets (default: protocol.targets, else every domain)")
    evaluate_test: bool = Field(default=True, description="after the search, test the chosen config(s) once (best_test.json)")
    name: str = Field(default="search", description="search directory under storage.out (resume with the same name)")


register_section("tune", TuneConfig, identity_excluded={
    "tune": "the search driver (each trial's sampled values are written into the fields they set)"})
