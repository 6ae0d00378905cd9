"""Launching one engine run on Ray Train and turning its last checkpoint into a selected model."""

from __future__ import annotations

import os
import posixpath
import sys
from typing import Any

from omnivad import storage
from omnivad.config import Config, dump
from omnivad.corpus.format import Corpus
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.spec import RunSpec
from omnivad.errors import CheckpointError


def scaling_config(cfg: Config) -> Any:
    import ray.train

    resources: dict[str, float] = {"CPU": cfg.scaling.cpus_per_worker, **cfg.scaling.resources_per_worker}
    if cfg.scaling.use_gpu:
        resources["GPU"] = cfg.scaling.gpus_per_worker or 1.0
    return ray.train.ScalingConfig(
        num_workers=cfg.scaling.workers, use_gpu=cfg.scaling.use_gpu, resources_per_worker=resources
    )


def train_datasets(cfg: Config, spec: RunSpec) -> dict[str, Any]:
    """One Ray Dataset per training domain (``train_<domain>``), resampled in the pipeline. A merged domain's
    auxiliary videos are read where the corpus stores them (``spec.locations``) and joined to its dataset."""
    from omnivad.data.ray_datasets import domain_dataset
    from omnivad.engine.spec import group_by_location

    corpus = Corpus.open(spec.corpus_uri, verify=cfg.corpus.verify)
    out: dict[str, Any] = {}
    for d, ids in spec.train.items():
        groups = group_by_location(d, ids, spec.locations) or {(d, "train"): []}
        parts = [domain_dataset(corpus, cd, split, vids, cfg.data.segments, cfg.data.resample)
                 for (cd, split), vids in groups.items()]
        out[f"train_{d}"] = parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])
    return out


def run_dir(cfg: Config, spec: RunSpec) -> str:
    """``<storage.out>/<run name>``: protocols point ``storage.out`` at a per-config directory."""
    return storage.join(cfg.storage.out, spec.name)


def finished_model(model_uri: str) -> bool:
    """Whether ``model_uri`` holds a finished run's model. A file that cannot be read (truncated, not a model)
    is moved aside (``model.pt.corrupt-<n>``) with a warning naming it and what is wrong; the run is then
    unfinished and resumes from its latest Ray checkpoint (or retrains)."""
    fs, path = storage.filesystem(model_uri)
    if not fs.exists(path):
        return False
    try:
        ckpt.read_model(model_uri, required=ckpt.MODEL_KEYS)
    except CheckpointError as exc:
        moved = ckpt.set_aside(model_uri)
        print(f"[omnivad] WARNING: {exc}; moved it to {moved} and treating the run as unfinished", file=sys.stderr)
        return False
    return True


def fit(cfg: Config, spec: RunSpec, callbacks: list[Any] | None = None) -> str:
    """:func:`fit_run`'s model URI."""
    return fit_run(cfg, spec, callbacks)[0]


def fit_run(cfg: Config, spec: RunSpec, callbacks: list[Any] | None = None) -> tuple[str, bool]:
    """Train (or resume) ``spec`` on Ray Train; write and return the URI of its selected ``model.pt``.

    Selection follows ``train.selection``: ``best-val`` (the default; falls back to the final weights
    when the run has no validation videos), ``final``, or ``best-test`` (the papers' optimistic practice:
    the run's ``test_domains`` are scored during training; recorded as ``selected: best-test@step``).
    ``callbacks``: Ray Train user callbacks (a search forwards the run's reports to Ray Tune with them).
    Returns ``(model URI, reused)``: ``reused`` when the run had finished before (logged ``reused: <run dir>``).
    ``train.max_failures`` is Ray Train's ``FailureConfig``: a worker that dies mid-run is restarted from the
    latest checkpoint within the same ``fit``.
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from omnivad.engine.train_loop import CRASH_ENV, train_loop_per_worker

    out = run_dir(cfg, spec)
    model_uri = storage.join(out, "model.pt")
    fs, model_path = storage.filesystem(model_uri)
    if finished_model(model_uri):
        print(f"[omnivad] {spec.name}: reused: {out}", file=sys.stderr)
        return model_uri, True
    storage_fs, storage_path = storage.filesystem(storage.join(out, "ray"))
    # fault injection for the resume tests reaches the workers through their runtime env
    env = {CRASH_ENV: os.environ[CRASH_ENV]} if os.environ.get(CRASH_ENV) else {}
    run_config = ray.train.RunConfig(
        name="train",
        storage_path=storage_path,
        storage_filesystem=storage.arrow_filesystem(storage_fs),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
        worker_runtime_env={"env_vars": env} if env else None,
        callbacks=callbacks,  # e.g. forwarding reports to Ray Tune (omnivad.tune)
    )
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": dump(cfg), "spec": spec.model_dump()},
        torch_config=TorchConfig(backend="nccl" if cfg.scaling.use_gpu else "gloo"),
        scaling_config=scaling_config(cfg),
        run_config=run_config,
        datasets=train_datasets(cfg, spec),
        dataset_config=ray.train.DataConfig(datasets_to_split="all"),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"run {spec.name}: finished without a checkpoint")
    with result.checkpoint.as_directory() as d:
        state = ckpt.load_state(d)
    use_best = cfg.train.selection != "final" and state["best"]["model"] is not None
    weights = state["best"]["model"] if use_best else state["model"]
    kind = "best-test" if cfg.train.selection == "best-test" and spec.test_domains else "best-val"
    selected = f"{kind}@{state['best']['step']}" if use_best else f"final@{state['step']}"
    ckpt.write_model(
        model_uri,
        {
            "model": weights,
            "method": cfg.model.method,
            "domains": list(state["domains"]),
            "feature_dim": Corpus.open(spec.corpus_uri).feature_dim,
            "selected": selected,
            "best_val": float(state["best"]["val"]),
            "history": state["history"],
            "config": dump(cfg),
            "spec": spec.model_dump(),
        },
    )
    storage.write_json_atomic(fs, posixpath.join(posixpath.dirname(model_path), "history.json"), state["history"])
    return model_uri, False
