"""Running a protocol end to end: plan its jobs (:mod:`omnivad.protocols.base`, one module per protocol),
run them concurrently as Ray tasks, aggregate and write the results; and comparisons of methods.

Every protocol is a list of independent *jobs* (one engine run, or a pre-training run followed by its
fine-tuning, then evaluation). Jobs run concurrently as Ray tasks, as many at a time as the cluster's
CPUs allow. Runs are stored under ``<out>/runs/<config hash>/...`` so a rerun with the same config and
corpus reuses finished runs (E3/E4 reuse the E1/E2 models) and resumes unfinished ones.

The names other modules import from here (``ensure_ray``, ``ensure_corpus``, ``config_hash``, ``Job``, ...)
live in :mod:`~omnivad.protocols.setup`, :mod:`~omnivad.protocols.common` and
:mod:`~omnivad.protocols.method_glue` and are re-exported.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any

from omnivad import storage
from omnivad.config import Config, dump
from omnivad.corpus.benchmark import Benchmark
from omnivad.corpus.format import Corpus
from omnivad.protocols.base import get_protocol
from omnivad.protocols.common import (  # noqa: F401  (re-exported)
    FOLD_METRICS, Job, config_hash, domain_headline, log, mean_std, results_payload, write_results,
)
from omnivad.protocols.scores import write_scores
from omnivad.protocols.method_glue import has_ac, method_tag, parse_method_entry  # noqa: F401  (re-exported)
from omnivad.protocols.setup import (  # noqa: F401  (re-exported)
    check_corpus_uri, ensure_corpus, ensure_ray, is_demo_uri, loopback_ray_env, package_runtime_env, ray_token_path,
    selected_domains,
)
from omnivad.report.tables import comparison_table


def plan(cfg: Config, corpus: Corpus, bench: Benchmark, domains: list[str]) -> list[Job]:
    """The jobs of ``cfg.protocol`` over its folds and targets."""
    return get_protocol(cfg.protocol.name).plan(cfg, corpus, bench, domains)


def aggregate(cfg: Config, jobs: list[Job], domains: list[str], start: str | None = None,
              corpus: Corpus | None = None) -> dict[str, Any]:
    """``cfg.protocol``'s ``results.json`` of ``jobs`` (of one E4 ``start``): see :meth:`Protocol.aggregate`."""
    return get_protocol(cfg.protocol.name).aggregate(cfg, jobs, domains, start, corpus)


def _run_job(cfg_dict: dict[str, Any], job: Job) -> dict[str, Any]:
    """Train every stage (reusing finished ones), then evaluate the last model on the test domains."""
    from omnivad.engine.checkpoint import read_model
    from omnivad.engine.evaluate import evaluate_model
    from omnivad.engine.trainer import fit_run, run_dir

    from omnivad.data.ray_datasets import quiet_progress

    quiet_progress()
    cfg = Config.model_validate(cfg_dict)
    model_uri = None
    reused: list[str] = []
    for stage in job.stages:
        last = stage is job.stages[-1]
        if model_uri is not None:
            stage = stage.model_copy(update={"init_model": model_uri})
        if last and cfg.train.selection == "best-test":
            stage = stage.model_copy(update={"test_domains": job.test_domains})
        model_uri, was_reused = fit_run(cfg, stage)
        if was_reused:
            reused.append(run_dir(cfg, stage))
    assert model_uri is not None
    corpus = Corpus.open(job.stages[-1].corpus_uri, verify=cfg.corpus.verify)
    metrics = evaluate_model(model_uri, corpus, job.test_domains, concurrency=1, align=cfg.metrics.align, keep_scores=True)
    metrics["checkpoint"] = model_uri
    metrics["threshold"] = job_threshold(cfg, job.stages[-1], model_uri, corpus)
    metrics["selected"] = read_model(model_uri)["selected"]
    metrics["reused_runs"] = reused
    return metrics


def job_threshold(cfg: Config, stage: Any, model_uri: str, corpus: Corpus) -> dict[str, Any]:
    """The model's operating threshold on its run's validation split (:mod:`omnivad.engine.threshold`), also
    written next to the model as ``threshold.json`` (what ``omnivad predict --threshold run`` reads)."""
    from omnivad.engine.checkpoint import read_model
    from omnivad.engine.evaluate import load_model
    from omnivad.engine.threshold import operating_threshold
    from omnivad.engine.train_loop import load_videos

    payload = read_model(model_uri)
    method, model = load_model(payload)
    videos = load_videos(corpus, {d: list(v) for d, v in stage.val.items() if v}, stage.locations)
    found = operating_threshold(method, model, videos, list(payload["domains"]), cfg.metrics.align)
    ofs, opath = storage.filesystem(threshold_uri(model_uri))
    storage.write_json_atomic(ofs, opath, found)
    return found


def threshold_uri(model_uri: str) -> str:
    """``threshold.json`` beside a run's ``model.pt``."""
    return model_uri.rsplit("/", 1)[0] + "/threshold.json" if "/" in model_uri else "threshold.json"


def max_concurrent(cfg: Config) -> int:
    import ray

    if cfg.scaling.max_concurrent_runs:
        return cfg.scaling.max_concurrent_runs
    cpus = ray.cluster_resources().get("CPU", 1.0)
    per_run = cfg.scaling.workers * cfg.scaling.cpus_per_worker + 1.0  # + one CPU for the run's data pipeline
    return max(1, int(cpus // per_run))


def execute(cfg: Config, jobs: list[Job]) -> None:
    """Run jobs as Ray tasks, at most :func:`max_concurrent` at once (in order of submission)."""
    import ray

    # Jobs that share a pre-training stage (E4 from E1: one E1 model per fold) must not train it twice
    # at once: the second waits until the first has finished it, then reuses the stored model.
    cfg_dict = dump(cfg)
    if len(jobs) == 1:  # one run: in this process (a Ray task would start one more Python process: seconds)
        log(f"run 1/1: started {jobs[0].stages[-1].name}")
        jobs[0].result = _run_job(cfg_dict, jobs[0])
        _log_finished(jobs[0], 1, 1)
        return
    remote = ray.remote(num_cpus=0, max_retries=0)(_run_job)
    limit = max_concurrent(cfg)
    pending = list(range(len(jobs)))
    running: dict[Any, int] = {}
    started: set[str] = set()
    finished: set[str] = set()
    while pending or running:
        for i in list(pending):
            if len(running) >= limit:
                break
            first = jobs[i].stages[0].name
            if first in started and first not in finished:
                continue
            started.add(first)
            running[remote.remote(cfg_dict, jobs[i])] = i
            pending.remove(i)
            log(f"run {len(jobs) - len(pending)}/{len(jobs)}: started {jobs[i].stages[-1].name}")
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            i = running.pop(ref)
            jobs[i].result = ray.get(ref)
            finished.add(jobs[i].stages[0].name)
            _log_finished(jobs[i], len(finished), len(jobs))


def _log_finished(job: Job, i: int, n: int) -> None:
    assert job.result is not None
    log(f"run {i}/{n} finished: {job.stages[-1].name}, mean AUC {100 * job.result['mean_auc']:.2f}"
        + (" (reused)" if job.result.get("reused_runs") else ""))


def prepare(cfg: Config) -> tuple[Corpus, list[str], Benchmark, str, str]:
    """Ray, the corpus, its domains, the benchmark, the corpus fingerprint and the config hash."""
    check_corpus_uri(cfg)  # before Ray starts
    ensure_ray(cfg)
    corpus = ensure_corpus(cfg)
    domains = selected_domains(cfg, corpus)
    if cfg.protocol.folds > cfg.benchmark.folds:
        raise ValueError(f"protocol.folds ({cfg.protocol.folds}) > benchmark.folds ({cfg.benchmark.folds})")
    fingerprint = corpus.fingerprint()
    bench = get_protocol(cfg.protocol.name).benchmark(cfg, corpus, domains)
    return corpus, domains, bench, fingerprint, config_hash(cfg, fingerprint, bench)


def profile_line(cfg: Config, root: str) -> str:
    """What every job says first: the profile (demo or paper), steps, lr, and whether finished runs are reused."""
    from omnivad.protocols.setup import is_demo_uri

    profile = "demo" if is_demo_uri(cfg.corpus.uri) else "paper"
    fs, path = storage.filesystem(root)
    reuse = "finished runs of this config are reused" if fs.exists(path) else "no earlier runs of this config"
    return (f"profile {profile}: steps {cfg.train.steps}, lr {cfg.train.lr:g}, selection {cfg.train.selection}; "
            f"{reuse} ({root})")


def run_protocol(cfg: Config) -> dict[str, Any]:
    """Run ``cfg.protocol`` end to end; write ``results.json`` / ``results.md`` under ``storage.out``."""
    protocol = get_protocol(cfg.protocol.name)
    corpus, domains, bench, fingerprint, chash = prepare(cfg)
    root = storage.join(cfg.storage.out, "runs", chash)
    profile = profile_line(cfg, root)  # before anything is written there
    bench.save(storage.join(root, "benchmark.json"))
    run_cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"out": root})})
    jobs = protocol.plan(run_cfg, corpus, bench, domains)
    log(f"{cfg.protocol.name} with {method_tag(cfg)}: {len(jobs)} job(s) over {cfg.protocol.folds} fold(s), "
        f"domains {', '.join(domains)}; corpus {corpus.uri} ({fingerprint})")
    log(profile)
    t0 = time.perf_counter()
    execute(run_cfg, jobs)
    reported = protocol.result_domains(cfg, domains)
    results = [protocol.aggregate(cfg, jobs, reported, s, corpus) for s in protocol.starts(cfg)]
    thresholds = {j.stages[-1].name: j.result["threshold"] for j in jobs}
    for r in results:
        r["thresholds"] = thresholds
        r.update(config=dump(cfg), corpus={"uri": corpus.uri, "fingerprint": fingerprint}, config_hash=chash,
                 wall_s=round(time.perf_counter() - t0, 1))
    md = protocol.table(results)
    payload = results_payload(cfg, results, chash)
    payload["results_uri"] = write_results(cfg, payload, md)
    write_scores(payload["results_uri"], jobs, corpus)
    payload["table"] = md
    return payload


# ---------------------------------------------------------------------------------------------- comparisons
def comparison_rows(results: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One Table 10 row per (entry, E4 start): the entry's label, per-domain AUC/AP, the mean and the results URI."""
    rows = []
    for entry, payload in results:
        for r in payload.get("starts") or [payload]:
            rows.append({
                "entry": entry, "protocol": r["protocol"], "start": r.get("start"), "method": r["method"],
                "trunk": r.get("trunk"), **({"ac": r["ac"]} if "ac" in r else {}), "per_domain": r["per_domain"],
                "mean_auc": r["mean_auc"], "mean_auc_std": r.get("mean_auc_std"), "n": r.get("n"), "folds": r["folds"],
                "selection": r.get("selection"), "selection_rule": r.get("selection_rule"),
                "best_test": r.get("selection") == "best-test",
                "config_hash": payload.get("config_hash"), "results_uri": payload.get("results_uri"),
            })
    return rows


def entry_config(cfg: Config, entry: str | None, **overrides: Any) -> Config:
    """``cfg`` with one ``--methods`` entry's method/trunk/AC (``METHOD[@TRUNK][+ac|+noac]``; None: none) and ``overrides``
    (dotted keys, e.g. ``{"protocol.name": "single"}``) applied, validated."""
    from omnivad.config import apply_override

    data = dump(cfg)
    for k, v in {**(parse_method_entry(entry) if entry else {}), **overrides}.items():
        apply_override(data, f"{k}={json.dumps(v)}")
    return Config.model_validate(data)


def run_comparison(cfg: Config, entries: list[str]) -> dict[str, Any]:
    """Run ``cfg.protocol`` once per ``--methods`` entry (each with its own config hash and results directory),
    then write ``table10.json`` / ``table10.md`` (MDVAD Table 10 layout: one row per method) under ``storage.out``."""
    if not entries:
        raise ValueError("--methods: expected at least one method")
    configs = [entry_config(cfg, e) for e in entries]  # every entry checked before anything trains
    results: list[tuple[str, dict[str, Any]]] = []
    for entry, entry_cfg in zip(entries, configs):
        log(f"comparison: {entry} ({len(results) + 1}/{len(entries)})")
        results.append((entry, run_protocol(entry_cfg)))
    rows = comparison_rows(results)
    md = comparison_table(rows)
    out_dir = storage.join(cfg.storage.out, f"{cfg.protocol.name}-compare-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    ofs, opath = storage.filesystem(out_dir)
    selections = sorted({r["selection"] for r in rows if r.get("selection")})
    payload = {"protocol": cfg.protocol.name, "methods": entries, "rows": rows, "selection": selections,
               "best_test": any(r["best_test"] for r in rows), "config": dump(cfg)}
    storage.write_json_atomic(ofs, storage.join(opath, "table10.json"), payload)
    storage.write_bytes_atomic(ofs, storage.join(opath, "table10.md"), md.encode())
    payload["results_uri"] = out_dir
    payload["table"] = md
    return payload
