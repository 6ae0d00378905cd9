"""Tracking backends written for real and read back: TensorBoard event files (EventAccumulator) and an MLflow
file store (MlflowClient); ``none`` imports neither."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omnivad import config
from omnivad.errors import ConfigError
from omnivad.tracking import Tracker, open_tracker


def _log_three(cfg: config.Config, run_dir: Path) -> None:
    tracker = open_tracker(cfg, "mil/fold0/E1", str(run_dir), {"lr": 1e-3, "steps": 30})
    for step in (10, 20, 30):
        tracker.log_metrics({"step": step, "loss": 1.0 / step, "val_auc": 0.5 + step / 100, "nan": float("nan")}, step)
    tracker.close()


def test_tensorboard_event_file_reads_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = config.load(overrides=["tracking.backend=tensorboard"])
    _log_three(cfg, tmp_path / "run")
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"loss", "val_auc"} <= set(acc.Tags()["scalars"])
    assert "nan" not in acc.Tags()["scalars"]
    assert [e.step for e in acc.Scalars("loss")] == [10, 20, 30]
    assert acc.Scalars("val_auc")[-1].value == pytest.approx(0.8)


def test_mlflow_file_store_reads_back(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    cfg = config.load(overrides=["tracking.backend=mlflow", f"tracking.uri={uri}", "tracking.experiment=exp1"])
    _log_three(cfg, tmp_path / "run")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("exp1")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "mil/fold0/E1" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.001"
    hist = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in hist] == [10, 20, 30]
    assert hist[0].value == pytest.approx(0.1)


def test_none_is_a_noop_and_imports_nothing() -> None:
    code = ("import sys; from omnivad import config; from omnivad.tracking import open_tracker;"
            "t = open_tracker(config.load(), 'r', '/nonexistent'); t.log_metrics({'loss': 1.0}, 1); t.close();"
            "print('mlflow' in sys.modules, 'tensorboard' in sys.modules, 'torch.utils.tensorboard' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
    assert type(open_tracker(config.load(), "r", "/nonexistent")) is Tracker


def test_bad_backend_and_remote_default_are_named() -> None:
    with pytest.raises(ConfigError, match="tracking.backend"):
        config.load(overrides=["tracking.backend=wandb"])
    cfg = config.load(overrides=["tracking.backend=mlflow", "storage.out=s3://bucket/out"])
    with pytest.raises(ConfigError, match="tracking.uri"):
        open_tracker(cfg, "r", "s3://bucket/out/r")


def test_tracking_is_not_in_the_run_identity() -> None:
    from omnivad.config import identity_fields

    assert "tracking" not in identity_fields(config.load(overrides=["tracking.backend=tensorboard"]))


def test_job_record_and_tune_callback(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    from omnivad.tracking import log_job, tune_callbacks

    uri = (tmp_path / "mlruns").as_uri()
    cfg = config.load(overrides=["tracking.backend=mlflow", f"tracking.uri={uri}"])
    log_job(cfg, "uvad-ae-rtfm-x", str(tmp_path), {"occ": "ae"}, [{"step": 1, "g": 2.0}],
            {"per_domain": {"campus": {"auc_stop": 0.7, "modules": [1, 2]}}})
    client = MlflowClient(tracking_uri=uri)
    run = client.search_runs([client.get_experiment_by_name("omnivad").experiment_id])[0]
    assert run.data.metrics == {"g": 2.0, "per_domain.campus.auc_stop": 0.7}
    assert [type(c) for c in tune_callbacks(cfg)] == [MLflowLoggerCallback]
    assert tune_callbacks(config.load()) == []
