"""Experiment tracking: the ``tracking`` config section and a :class:`Tracker` for TensorBoard or MLflow.

``tracking.backend=none`` (default) tracks nothing. ``tensorboard`` writes event files (``tracking.uri`` a
directory; default ``<run dir>/tensorboard``); ``mlflow`` logs params and metrics to an MLflow tracking URI
(``tracking.uri``, e.g. ``file:/tmp/mlruns`` or ``http://host:5000``; default ``file:<storage.out>/mlruns``),
experiment ``tracking.experiment``. Both are imported only when chosen (``pip install omnivad[tracking]``).
Training runs log from rank 0 (every logged step and every evaluation); uvad and zxvad log their results.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

from pydantic import Field

from omnivad.errors import ConfigError
from omnivad.sections import Section, register_section


class TrackingConfig(Section):
    """Where training metrics go besides history.json (TensorBoard event files or an MLflow tracking store)."""

    backend: Literal["none", "tensorboard", "mlflow"] = Field(
        default="none", description="none, tensorboard (event files) or mlflow (a tracking URI)")
    uri: str | None = Field(
        default=None, description="tensorboard: log directory (default <run dir>/tensorboard); "
                                  "mlflow: tracking URI (default file:<storage.out>/mlruns)")
    experiment: str = Field(default="omnivad", description="MLflow experiment name (runs are named after the run)")


register_section("tracking", TrackingConfig,
                 identity_excluded={"tracking": "where metrics are logged; cannot change trained weights"})


def _missing(package: str, exc: ImportError) -> ConfigError:
    return ConfigError(f"tracking.backend: {package} is not installed (pip install 'omnivad[tracking]'): {exc}")


class Tracker:
    """Logs params once and scalar metrics per step; :meth:`close` flushes. The no-op for ``backend=none``."""

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)) and k != "step":
            out[k.replace(":", "_")] = float(v)
    return out


class TensorBoardTracker(Tracker):
    def __init__(self, logdir: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise _missing("tensorboard", exc) from exc
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self.writer = SummaryWriter(log_dir=logdir)

    def log_params(self, params: dict[str, Any]) -> None:
        self.writer.add_text("params", "\n".join(f"    {k}: {v}" for k, v in sorted(params.items())))

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        for k, v in _scalars(metrics).items():
            self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class MlflowTracker(Tracker):
    def __init__(self, uri: str, experiment: str, run_name: str) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise _missing("mlflow", exc) from exc
        if uri.startswith("file:") or "://" not in uri:
            # a file store was asked for by name: MLflow 3 keeps it behind this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            exp_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
            self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
        except Exception as exc:  # noqa: BLE001 - any failure to reach the store is a config problem
            raise ConfigError(f"tracking.uri {uri}: cannot open the MLflow store ({type(exc).__name__}: {exc})") from exc

    def log_params(self, params: dict[str, Any]) -> None:
        for k, v in sorted(params.items()):
            self.client.log_param(self.run_id, k, str(v)[:500])

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        for k, v in _scalars(metrics).items():
            self.client.log_metric(self.run_id, k, v, step=step)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def mlflow_uri(cfg: Any) -> str:
    """``tracking.uri`` or ``file:<storage.out>/mlruns`` (local outputs only; give ``tracking.uri`` for s3 outputs)."""
    if cfg.tracking.uri:
        return str(cfg.tracking.uri)
    out = str(cfg.storage.out)
    if "://" in out:
        raise ConfigError(f"tracking.uri: storage.out {out} is not local; give an MLflow tracking URI")
    return "file:" + os.path.join(os.path.abspath(os.path.expanduser(out)), "mlruns")


def open_tracker(cfg: Any, run_name: str, run_dir: str, params: dict[str, Any] | None = None) -> Tracker:
    """The tracker ``cfg.tracking`` chooses for one run (``run_dir``: where TensorBoard writes by default)."""
    backend = cfg.tracking.backend
    if backend == "none":
        return Tracker()
    if backend == "tensorboard":
        if not cfg.tracking.uri and "://" in run_dir:
            raise ConfigError(f"tracking.uri: the run directory {run_dir} is not local; give a local TensorBoard log directory")
        logdir = cfg.tracking.uri or os.path.join(os.path.expanduser(run_dir), "tensorboard")
        tracker: Tracker = TensorBoardTracker(os.path.join(logdir, run_name.replace("/", "_")) if cfg.tracking.uri else logdir)
    else:
        tracker = MlflowTracker(mlflow_uri(cfg), cfg.tracking.experiment, run_name)
    if params:
        tracker.log_params(params)
    return tracker


def run_params(cfg: Any) -> dict[str, Any]:
    """The params a training run logs: method, steps, lr, weight decay, selection, seed, workers."""
    return {"method": cfg.model.method, "steps": cfg.train.steps, "lr": cfg.train.lr,
            "weight_decay": cfg.train.weight_decay, "selection": cfg.train.selection, "seed": cfg.train.seed,
            "workers": cfg.scaling.workers}


def flat_scalars(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested dict, keyed ``a.b.c`` (lists are left out)."""
    out: dict[str, float] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_scalars(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[key] = float(v)
    return out


def log_job(cfg: Any, run_name: str, run_dir: str, params: dict[str, Any], history: list[dict[str, Any]],
            final: dict[str, Any]) -> None:
    """A finished job's record (uvad, zxvad): ``history`` entries at their ``step``, then ``final``'s numbers."""
    if cfg.tracking.backend == "none":
        return
    tracker = open_tracker(cfg, run_name, run_dir, params)
    last = 0
    for h in history:
        last = int(h.get("step", last + 1))
        tracker.log_metrics(h, last)
    tracker.log_metrics(flat_scalars(final), last)
    tracker.close()


def tune_callbacks(cfg: Any) -> list[Any]:
    """Ray Tune's MLflow logger when ``tracking.backend=mlflow`` (Ray's own CSV/JSON/TensorBoard loggers stay)."""
    if cfg.tracking.backend != "mlflow":
        return []
    uri = mlflow_uri(cfg)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        from ray.air.integrations.mlflow import MLflowLoggerCallback
    except ImportError as exc:
        raise _missing("mlflow", exc) from exc
    return [MLflowLoggerCallback(tracking_uri=uri, experiment_name=cfg.tracking.experiment, save_artifact=False)]
