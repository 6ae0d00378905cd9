"""The search's Ray classes (imported only where Ray Tune runs): the Ray Train callback that forwards each
validation report to Tune, and ASHA whose "stop" is a request the trial honours (:mod:`omnivad.tune.search`)."""

from __future__ import annotations

from typing import Any

from ray.experimental import internal_kv
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from omnivad.tune.trial_state import STOP_NAMESPACE, TrialStopped, _objective_values, _stop_key, stop_requested


class ForwardValidation(TuneReportCallback):
    """Turns each validation report of a trial's run into a Tune result, and ends the run (gracefully,
    through the Train controller) once ASHA has asked to stop the trial."""

    def __init__(self, trial_id: str, objective: str, offset: int, done: dict[str, list[float]], objs: list[str]):
        super().__init__()
        self.trial_id, self.objective, self.offset, self.done, self.objs = trial_id, objective, offset, done, objs

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        m = metrics[0]  # rank 0 validates
        if "val_auc" not in m:
            return
        result = {"step": self.offset + int(m["step"]), "val_auc": float(m["val_auc"]), "run": f"{self.objective}",
                  **_objective_values(self.done, self.objs, (self.objective, float(m["val_auc"])))}
        super().after_report(run_context, [result], checkpoint)
        if stop_requested(self.trial_id):
            raise TrialStopped(f"trial {self.trial_id}: stopped by ASHA at step {result['step']}")


class GracefulASHA(ASHAScheduler):
    """ASHA whose STOP is a request the trial honours at its next report, instead of Tune killing the
    trial's actor: a killed actor would take its Ray Train controller down without releasing the
    workers' placement group (Ray Train's own cleaner needs the dashboard's state API)."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP and result.get(self._time_attr, 0) < self._max_t:
            internal_kv._internal_kv_put(_stop_key(trial.trial_id), b"1", namespace=STOP_NAMESPACE)
            return TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE if action == TrialScheduler.STOP else action
