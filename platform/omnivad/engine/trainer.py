"""Launching one engine run on Ray Train and turning its last checkpoint into a selected model."""

from __future__ import annotations

import posixpath
import sys
import time
from typing import Any

from omnivad import storage
from omnivad.config import Config, dump
from omnivad.corpus.format import Corpus
from omnivad.engine import checkpoint as ckpt
from omnivad.engine import harness, timing
from omnivad.engine.spec import RunSpec
from omnivad.errors import CheckpointError


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


def fit(cfg: Config, spec: RunSpec, callbacks: list[Any] | None = None,
        step_hooks: list[harness.StepHook] | None = None) -> str:
    """:func:`fit_run`'s model URI."""
    return fit_run(cfg, spec, callbacks, step_hooks)[0]


def fit_run(cfg: Config, spec: RunSpec, callbacks: list[Any] | None = None,
            step_hooks: list[harness.StepHook] | None = None) -> tuple[str, bool]:
    """Train (or resume) ``spec`` on Ray Train; write and return the URI of its selected ``model.pt``.

    ``callbacks``: Ray Train user callbacks (a search forwards the run's reports to Ray Tune with them);
    ``step_hooks``: per-step callables every worker calls (:func:`omnivad.engine.harness.launch`).
    Returns ``(model URI, reused)``: ``reused`` when the run had finished before (logged ``reused: <run dir>``).
    ``train.max_failures`` is Ray Train's ``FailureConfig``: a worker that dies mid-run is restarted from the
    latest checkpoint within the same ``fit``.
    """
    from omnivad.engine.train_loop import train_loop_per_worker

    marks = {"start": time.time()}
    out = run_dir(cfg, spec)
    model_uri = storage.join(out, "model.pt")
    if finished_model(model_uri):
        print(f"[omnivad] {spec.name}: reused: {out}", file=sys.stderr)
        return model_uri, True
    datasets = train_datasets(cfg, spec)
    marks["planned"] = time.time()
    result = harness.launch(
        train_loop_per_worker, {"cfg": dump(cfg), "spec": spec.model_dump()}, cfg, storage.join(out, "ray"),
        datasets=datasets, max_failures=cfg.train.max_failures, callbacks=callbacks, step_hooks=step_hooks,
    )
    marks["launched"] = time.time()
    state = harness.final_state(result, f"run {spec.name}")
    marks["read"] = time.time()
    write_selected(cfg, spec, state, model_uri, marks)
    return model_uri, False


def write_selected(cfg: Config, spec: RunSpec, state: dict[str, Any], model_uri: str,
                   marks: dict[str, float] | None = None) -> None:
    """Write the run's selected weights as ``model.pt`` (and its ``history.json`` beside it).

    Selection follows ``train.selection``: ``best-val`` (the default; falls back to the final weights
    when the run has no validation videos), ``final``, or ``best-test`` (the papers' optimistic practice:
    the run's ``test_domains`` are scored during training; recorded as ``selected: best-test@step``).
    """
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
    fs, model_path = storage.filesystem(model_uri)
    history = state["history"]
    if marks is not None and history:  # the run's phases (engine/timing.py): the model write is timed up to here
        marks["written"] = time.time()
        history[-1]["timing"] = timing.driver_timing(history[-1].get("timing", {}), marks)
        print(f"[omnivad] {spec.name}: timing {timing.describe(history[-1]['timing'])}", file=sys.stderr)
    storage.write_json_atomic(fs, posixpath.join(posixpath.dirname(model_path), "history.json"), history)
