"""A Ray Tune search over the shared trainer: Optuna (TPE, seeded) suggests, ASHA stops, Ray Train trains.

Each trial is a Tune function trainable that launches the objective's engine runs one after another
(:func:`omnivad.engine.trainer.fit`, each a Ray Train run with ``scaling.workers`` workers and its own
checkpoints under ``<search>/trials/<trial id>/``). A Ray Train callback forwards every validation report
to Tune, so ASHA can stop a trial mid-run. ASHA's "stop" is a request (Ray's internal KV) that the
trial's callback honours at its next validation report by ending the Ray Train run through its
controller; Tune killing the trial's actor instead would leak the workers' placement group.

Objectives (``tune.objective``), validation splits only:

- ``E1``: ``e1_val_auc``, the held-in run's mean validation AUC over domains (validation carved from
  training), of the weights ``train.selection`` keeps.
- ``E2``: ``e2_val_auc``, per held-out target a run trained on the other domains and scored on the
  target's validation videos (unseen-domain rule); the mean over targets. While a trial runs, the
  reported value is the mean over the targets finished so far and the current one.
- ``both``: the two at once (Optuna multi-objective, the Pareto front of completed trials). ASHA can
  act on one metric only: ``tune.asha_multi=off`` (default) runs every trial to the end, ``first``
  applies ASHA to ``e1_val_auc`` (the E1 run goes first).

Test sets are touched once, after the search, for the chosen config(s) (``best_test.json``).
The search state lives under ``<search>/tune`` and a killed driver resumes with ``resume=True``.
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from typing import Any

from omnivad import storage
from omnivad.config import Config, dump, to_yaml
from omnivad.engine.spec import RunSpec
from omnivad.errors import ConfigError
from omnivad.tracking import tune_callbacks
from omnivad.tune.space import apply_params, current_values, resolve_space, tune_domains
from omnivad.tune.trial_state import (  # noqa: F401  (re-exported)
    METRICS,
    STOP_NAMESPACE,
    TrialStopped,
    _objective_values,
    _stop_key,
    stop_requested,
)

EXPERIMENT = "tune"  # Tune's experiment directory under the search directory


def log(msg: str) -> None:
    print(f"[omnivad] {msg}", file=sys.stderr, flush=True)


def objectives(cfg: Config) -> list[str]:
    return ["E1", "E2"] if cfg.tune.objective == "both" else [cfg.tune.objective]


# --------------------------------------------------------------------------------------------------
# What one trial trains


def plan_runs(cfg: Config, bench: Any, corpus_uri: str, domains: list[str]) -> list[dict[str, Any]]:
    """The engine runs of one trial, in order: ``[{objective, key, spec, tested}]`` (E1 first), each planned by
    the objective's protocol (:meth:`omnivad.protocols.base.Protocol.search_runs`)."""
    from omnivad.protocols import get_protocol

    t = cfg.tune
    if t.fold >= len(bench.folds):
        raise ConfigError(f"tune.fold: {t.fold} but the benchmark has {len(bench.folds)} fold(s) (benchmark.folds)")
    runs: list[dict[str, Any]] = []
    for objective in objectives(cfg):
        protocol = get_protocol(objective)
        runs.extend(protocol.search_runs(cfg, bench, corpus_uri, domains, t.fold, t.targets or cfg.protocol.targets or domains))
    return runs


def trial_dir(search_dir: str, trial_id: str) -> str:
    return storage.join(search_dir, "trials", trial_id)


def model_uri(search_dir: str, trial_id: str, spec_name: str) -> str:
    """Where :func:`omnivad.engine.trainer.fit` writes the selected model of a trial's run."""
    return storage.join(trial_dir(search_dir, trial_id), spec_name, "model.pt")


def selected_val(uri: str, cfg: Config) -> float:
    """The validation AUC of the weights the run kept (best-val), or of its last evaluation (final)."""
    from omnivad.engine.checkpoint import read_model

    payload = read_model(uri)
    if cfg.train.selection != "final" and payload["best_val"] >= 0:
        return float(payload["best_val"])
    vals = [h["val_auc"] for h in payload["history"] if "val_auc" in h]
    return float(vals[-1]) if vals else float("nan")


def _forward_callback(trial_id: str, objective: str, offset: int, done: dict[str, list[float]], objs: list[str]) -> Any:
    """A Ray Train callback that turns each validation report of a run into a Tune result, and ends the
    run (gracefully, through the Train controller) once ASHA has asked to stop the trial."""
    from omnivad.tune.ray_hooks import ForwardValidation

    return ForwardValidation(trial_id, objective, offset, done, objs)


def _graceful_asha(**kwargs: Any) -> Any:
    """ASHA whose STOP is a request the trial honours at its next report (:class:`omnivad.tune.ray_hooks.GracefulASHA`)."""
    from omnivad.tune.ray_hooks import GracefulASHA

    return GracefulASHA(**kwargs)


def run_trial(params: dict[str, Any], base: dict[str, Any], runs: list[dict[str, Any]], search_dir: str) -> None:
    """One trial (runs inside a Tune actor): train the planned runs with ``params`` set, report the objective(s).

    A restarted trial (resumed search) finds its finished runs' models and its unfinished runs' Ray Train
    checkpoints under its own directory and continues from them.
    """
    import ray.tune

    from omnivad.data.ray_datasets import quiet_progress
    from omnivad.engine.trainer import fit

    quiet_progress()
    trial_id = ray.tune.get_context().get_trial_id()
    cfg = apply_params(Config.model_validate(base), params)
    out = trial_dir(search_dir, trial_id)
    cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"out": out})})
    fs, path = storage.filesystem(out)
    # one marker per attempt: the resume test counts them (a finished trial must never start again)
    storage.write_json_atomic(fs, storage.join(path, "attempts", f"{time.time_ns()}-{uuid.uuid4().hex[:6]}.json"),
                              {"params": params, "time": time.time()})
    objs = list(dict.fromkeys(r["objective"] for r in runs))
    done: dict[str, list[float]] = {o: [] for o in objs}
    offset = 0
    for run in runs:
        spec = RunSpec.model_validate(run["spec"])
        try:
            uri = fit(cfg, spec, callbacks=[_forward_callback(trial_id, run["objective"], offset, done, objs)])
        except Exception:
            if stop_requested(trial_id):  # ASHA stopped it; its last result stands (step < the full budget)
                return
            raise
        done[run["objective"]].append(selected_val(uri, cfg))
        offset += spec.steps
    ray.tune.report({"step": offset, "run": "final", "val_auc": float("nan"), **_objective_values(done, objs)})


# --------------------------------------------------------------------------------------------------
# The search


def max_concurrent_trials(cfg: Config) -> int:
    """Trials that fit at once: each needs ``workers × cpus_per_worker`` CPUs plus one for its data
    pipeline (and ``workers × gpus_per_worker`` GPUs on GPU runs)."""
    import ray

    if cfg.tune.max_concurrent_trials:
        return cfg.tune.max_concurrent_trials
    res = ray.cluster_resources()
    s = cfg.scaling
    n = int(res.get("CPU", 1.0) // (s.workers * s.cpus_per_worker + 1.0))
    if s.use_gpu:
        n = min(n, int(res.get("GPU", 0.0) // (s.workers * (s.gpus_per_worker or 1.0))))
    return max(1, n)


def _searcher(cfg: Config, space: list[Any]) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    objs = objectives(cfg)
    seed = cfg.tune.seed
    sampler = optuna.samplers.TPESampler(seed=seed) if cfg.tune.sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    start = [current_values(cfg, space)] if cfg.tune.start_from_config else None
    if len(objs) == 1:
        return OptunaSearch(metric=METRICS[objs[0]], mode="max", sampler=sampler, points_to_evaluate=start)
    return OptunaSearch(metric=[METRICS[o] for o in objs], mode=["max"] * len(objs), sampler=sampler, points_to_evaluate=start)


def _scheduler(cfg: Config, total_steps: int) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    objs = objectives(cfg)
    if not cfg.tune.asha or (len(objs) > 1 and cfg.tune.asha_multi == "off"):
        return FIFOScheduler()
    metric = METRICS[objs[0]]
    grace = min(cfg.tune.grace_steps or cfg.train.eval_every, total_steps)
    return _graceful_asha(time_attr="step", metric=metric, mode="max", max_t=total_steps, grace_period=grace,
                          reduction_factor=cfg.tune.reduction_factor)


def search_dir_of(cfg: Config) -> str:
    return storage.join(cfg.storage.out, cfg.tune.name)


def _search_config(cfg: Config, sdir: str, resume: bool) -> Config:
    """The config to search with: ``cfg``, or with ``resume`` the one saved by the search at ``sdir``."""
    fs, spath = storage.filesystem(sdir)
    saved_cfg = storage.join(spath, "config.yaml")
    exp_path = storage.join(spath, EXPERIMENT)
    if resume:
        if not fs.exists(saved_cfg) or not fs.exists(exp_path):
            raise ConfigError(f"--resume: no search to resume at {sdir} (tune.name={cfg.tune.name!r}, storage.out)")
        import yaml

        cfg = Config.model_validate(yaml.safe_load(storage.read_bytes(fs, saved_cfg)))
        log(f"resuming the search at {sdir} with its saved config")
    elif fs.exists(exp_path):
        raise ConfigError(f"tune.name: a search already exists at {sdir}; use --resume, or another tune.name / --out")
    if cfg.train.selection == "best-test":
        raise ConfigError("train.selection: best-test reads the test sets; a search selects on validation only")
    return cfg


def _save_inputs(cfg: Config, sdir: str, corpus: Any, fingerprint: str, bench: Any) -> None:
    """The search's config, corpus identity and benchmark, written when it starts."""
    fs, spath = storage.filesystem(sdir)
    storage.write_bytes_atomic(fs, storage.join(spath, "config.yaml"), to_yaml(cfg).encode())
    storage.write_json_atomic(fs, storage.join(spath, "corpus.json"), {"uri": corpus.uri, "fingerprint": fingerprint})
    bench.save(storage.join(sdir, "benchmark.json"))


def _tuner(cfg: Config, trainable: Any, space: list[Any], sdir: str, total_steps: int, limit: int, resume: bool) -> Any:
    """A new Tuner over ``space`` (Optuna search, ASHA or FIFO), or the restored one of a resumed search."""
    from ray import tune

    fs, spath = storage.filesystem(sdir)
    arrow_fs = storage.arrow_filesystem(fs)
    exp_path = storage.join(spath, EXPERIMENT)
    if resume:
        return tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                  storage_filesystem=arrow_fs)
    return tune.Tuner(
        trainable,
        param_space=tune_domains(space),
        tune_config=tune.TuneConfig(search_alg=_searcher(cfg, space), scheduler=_scheduler(cfg, total_steps),
                                    num_samples=cfg.tune.trials, max_concurrent_trials=limit),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=spath, storage_filesystem=arrow_fs, verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=0), callbacks=tune_callbacks(cfg)),
    )


def run_search(cfg: Config, resume: bool = False) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) the search of ``cfg.tune``; write its results; return a summary."""
    from ray import tune

    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.protocols.setup import check_corpus_uri, ensure_corpus, ensure_ray, selected_domains

    sdir = search_dir_of(cfg)
    cfg = _search_config(cfg, sdir, resume)
    check_corpus_uri(cfg)  # before Ray starts
    ensure_ray(cfg)
    corpus = ensure_corpus(cfg)
    domains = selected_domains(cfg, corpus)
    space = resolve_space(cfg)
    bench = build_benchmark(corpus, cfg.benchmark, domains)
    runs = plan_runs(cfg, bench, corpus.uri, domains)
    total_steps = sum(r["spec"]["steps"] for r in runs)
    fingerprint = corpus.fingerprint()
    if not resume:
        _save_inputs(cfg, sdir, corpus, fingerprint, bench)

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=dump(cfg), runs=runs, search_dir=sdir),
        {"CPU": 0.0, "memory": 1.0},  # a trial only waits on its Ray Train run (its workers hold the CPUs)
    )
    limit = max_concurrent_trials(cfg)
    log(f"search {cfg.tune.objective} with {cfg.model.method}: {cfg.tune.trials} trial(s), {len(runs)} run(s) of "
        f"{cfg.train.steps} steps each, {limit} at a time; "
        f"space {', '.join(p.path for p in space)} → {sdir}")
    t0 = time.perf_counter()
    grid = _tuner(cfg, trainable, space, sdir, total_steps, limit, resume).fit()
    rows = trial_rows(cfg, grid, space, total_steps)
    summary = write_results(cfg, sdir, rows, runs, space, corpus, bench.test_domains())
    summary.update(search_uri=sdir, wall_s=round(time.perf_counter() - t0, 1), corpus_fingerprint=fingerprint)
    return summary


def trial_rows(cfg: Config, grid: Any, space: list[Any], total_steps: int) -> list[dict[str, Any]]:
    """One row per trial: id, status (completed / stopped early by ASHA / error), params, metrics, time."""
    rows = []
    start = current_values(cfg, space) if cfg.tune.start_from_config else None
    for res in grid:
        m = res.metrics or {}
        trial_id = m.get("trial_id") or res.path.rstrip("/").rsplit("/", 1)[-1]
        params = {p.path: res.config.get(p.path) for p in space}
        step = int(m.get("step", 0) or 0)
        if res.error is not None:
            status = "error"
        elif step >= total_steps:
            status = "completed"
        else:
            status = "stopped"
        row: dict[str, Any] = {"trial_id": trial_id, "status": status, "step": step,
                               "time_s": round(float(m.get("time_total_s", float("nan"))), 1),
                               "start_point": bool(start) and all(
                                   params.get(k) is not None and math.isclose(float(params[k]), float(v), rel_tol=1e-9)
                                   for k, v in start.items()),
                               **params}
        for o in objectives(cfg):
            row[METRICS[o]] = float(m.get(METRICS[o], float("nan")))
        rows.append(row)
    return sorted(rows, key=lambda r: str(r["trial_id"]))


def write_results(cfg: Config, sdir: str, rows: list[dict[str, Any]], runs: list[dict[str, Any]], space: list[Any],
                  corpus: Any, test_domains: list[str]) -> dict[str, Any]:
    """trials.csv/md, best_config.yaml, pareto.csv/md/png (two objectives), best_test.json."""
    from omnivad.tune import pareto, report

    fs, spath = storage.filesystem(sdir)
    objs = objectives(cfg)
    keys = [METRICS[o] for o in objs]
    params = [p.path for p in space]
    columns = ["trial_id", "status", "step", *keys, *params, "time_s", "start_point"]
    storage.write_bytes_atomic(fs, storage.join(spath, "trials.csv"), report.to_csv(rows, columns).encode())
    title = f"Search {cfg.tune.objective} ({cfg.model.method}): validation AUC, {len(rows)} trials"
    storage.write_bytes_atomic(fs, storage.join(spath, "trials.md"), report.to_markdown(rows, columns, title).encode())

    done = [r for r in rows if r["status"] == "completed" and all(not math.isnan(r[k]) for k in keys)]
    if not done:
        raise RuntimeError(f"search {sdir}: no trial completed (see trials.md)")
    summary: dict[str, Any] = {"trials": rows, "objective": cfg.tune.objective}
    if len(keys) == 1:
        chosen = [max(done, key=lambda r: r[keys[0]])]
    else:
        front = pareto.pareto_front(done, keys)
        storage.write_bytes_atomic(fs, storage.join(spath, "pareto.csv"), report.to_csv(front, columns).encode())
        storage.write_bytes_atomic(fs, storage.join(spath, "pareto.md"), report.to_markdown(
            front, columns, "Pareto front: held-in (E1) vs held-out (E2) validation AUC").encode())
        png = pareto.plot_front(done, front, (keys[0], keys[1]), f"{cfg.model.method}: E1 vs E2 validation AUC")
        storage.write_bytes_atomic(fs, storage.join(spath, "pareto.png"), png)
        for r in front:
            best_cfg = _best_config(cfg, r, params)
            storage.write_bytes_atomic(fs, storage.join(spath, "pareto_configs", f"{r['trial_id']}.yaml"), to_yaml(best_cfg).encode())
        summary["pareto"] = front
        # the single config to hand on: the front's best mean of both objectives
        chosen = front
        best = max(front, key=lambda r: sum(r[k] for k in keys))
        chosen = [best] + [r for r in front if r is not best]
    best_row = chosen[0]
    storage.write_bytes_atomic(fs, storage.join(spath, "best_config.yaml"), to_yaml(_best_config(cfg, best_row, params)).encode())
    summary["best"] = best_row
    if cfg.tune.evaluate_test:
        summary["test"] = evaluate_chosen(sdir, chosen, runs, corpus, test_domains)
    storage.write_json_atomic(fs, storage.join(spath, "summary.json"),
                              {k: v for k, v in summary.items() if k != "trials"} | {"config": dump(cfg)})
    return summary


def _best_config(cfg: Config, row: dict[str, Any], params: list[str]) -> Config:
    """The base config with a trial's values: ready for ``jobs/mdvad.py --config`` (protocol = objective)."""
    best = apply_params(cfg, {p: row[p] for p in params})
    protocol = "E2" if cfg.tune.objective == "E2" else "E1"
    return best.model_copy(update={"protocol": best.protocol.model_copy(update={"name": protocol})})


def evaluate_chosen(sdir: str, chosen: list[dict[str, Any]], runs: list[dict[str, Any]], corpus: Any,
                    test_domains: list[str]) -> dict[str, Any]:
    """Test metrics of the chosen trials' models, computed once after the search (never used to choose)."""
    import numpy as np

    from omnivad.engine.evaluate import evaluate_model

    fs, spath = storage.filesystem(sdir)
    out: dict[str, Any] = {
        "note": "TEST SET, evaluated once after the search for the chosen config(s); selection used validation only",
        "trials": {},
    }
    for row in chosen:
        tid = str(row["trial_id"])
        per: dict[str, Any] = {}
        for o in dict.fromkeys(r["objective"] for r in runs):
            rs = [r for r in runs if r["objective"] == o]
            per_domain: dict[str, Any] = {}
            for r in rs:
                uri = model_uri(sdir, tid, r["spec"]["name"])
                tested = [d for d in r["tested"] if d in test_domains]
                per_domain.update(evaluate_model(uri, corpus, tested)["per_domain"])
            per[o] = {"per_domain": per_domain, "mean_auc": float(np.mean([m["auc"] for m in per_domain.values()]))}
        out["trials"][tid] = per
        log(f"test (once, after the search) of trial {tid}: "
            + ", ".join(f"{o} mean AUC {100 * v['mean_auc']:.2f}" for o, v in per.items()))
    storage.write_json_atomic(fs, storage.join(spath, "best_test.json"), out)
    return out
