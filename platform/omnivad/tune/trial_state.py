"""A search trial's shared state, used by the driver (:mod:`omnivad.tune.search`) and by the Ray classes
(:mod:`omnivad.tune.ray_hooks`): the objective metrics, their running values and the graceful-stop flag."""

from __future__ import annotations

METRICS = {"E1": "e1_val_auc", "E2": "e2_val_auc"}


def _objective_values(done: dict[str, list[float]], objs: list[str], current: tuple[str, float] | None = None) -> dict[str, float]:
    """Each objective's metric: the mean over finished runs (and the running one's current value)."""
    out = {}
    for o in objs:
        vals = list(done[o]) + ([current[1]] if current and current[0] == o else [])
        out[METRICS[o]] = float(sum(vals) / len(vals)) if vals else float("nan")
    return out


STOP_NAMESPACE = "omnivad-tune-stop"


def _stop_key(trial_id: str) -> bytes:
    return f"stop/{trial_id}".encode()


def stop_requested(trial_id: str) -> bool:
    from ray.experimental import internal_kv

    return internal_kv._internal_kv_exists(_stop_key(trial_id), namespace=STOP_NAMESPACE)


class TrialStopped(RuntimeError):
    """Raised in the Ray Train controller to end a run that ASHA stopped (a graceful shutdown)."""
