"""Protocols as orchestrations of engine runs: single-domain matrix, E1 held-in, E2 leave-one-out,
E3 low-shot adaptation, E4 full fine-tuning (MDVAD §6.3–6.5).

Every protocol is a list of independent *jobs* (one engine run, or a pre-training run followed by its
fine-tuning, then evaluation). Jobs run concurrently as Ray tasks, as many at a time as the cluster's
CPUs allow. Runs are stored under ``<out>/runs/<config hash>/...`` so a rerun with the same config and
corpus reuses finished runs (E3/E4 reuse the E1/E2 models) and resumes unfinished ones.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnivad import storage
from omnivad.config import Config, dump, identity_fields, to_yaml
from omnivad.corpus.benchmark import Benchmark, build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.engine.spec import RunSpec
from omnivad.errors import ConfigError, CorpusError
from omnivad.report.tables import comparison_table, cross_domain_table, protocol_table


def log(msg: str) -> None:
    print(f"[omnivad] {msg}", file=sys.stderr, flush=True)


@dataclass
class Job:
    """Train ``stages`` in order (each starts from the previous one's model), then test the last."""

    key: tuple[str, ...]  # (fold, target or source) — how the protocol aggregates the result
    stages: list[RunSpec]
    test_domains: list[str]
    result: dict[str, Any] = field(default_factory=dict)


def config_hash(cfg: Config, fingerprint: str, bench: Benchmark | None = None) -> str:
    """The identity of the models a config trains: a hash of the whole resolved config minus
    :data:`omnivad.config.IDENTITY_EXCLUDED` (fields that cannot change trained weights: output locations,
    log cadence, the Ray address, ...), plus the corpus fingerprint and the benchmark's split ids (every
    fold's train/val/test/low-shot ids per domain). A field or section not on that list is in the key."""
    relevant: dict[str, Any] = {"config": identity_fields(cfg), "corpus": fingerprint}
    if bench is not None:
        relevant["splits"] = [f.model_dump(mode="json") for f in bench.folds]
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]


def method_tag(cfg: Config) -> str:
    """``nullang-mil+ac``, ``nullang-mil@bn-wvad+ac`` (non-default trunk), ``bn-wvad`` (a method without AC)."""
    from omnivad.methods.registry import get_method

    trunked = getattr(get_method(cfg.model.method), "trunked", False)
    trunk = f"@{cfg.model.trunk}" if trunked and cfg.model.trunk != "mdvad" else ""
    return cfg.model.method + trunk + ("+ac" if cfg.loss.ac and trunked else "")


def plan(cfg: Config, corpus: Corpus, bench: Benchmark, domains: list[str]) -> list[Job]:
    """The jobs of ``cfg.protocol`` over its folds and targets."""
    p = cfg.protocol
    tag = method_tag(cfg)
    seed = cfg.train.seed
    jobs: list[Job] = []

    def spec(name: str, fold: int, train: dict[str, list[str]], val: dict[str, list[str]], heads: list[str], **kw: Any) -> RunSpec:
        return RunSpec(
            name=f"{tag}/fold{fold}/{name}", corpus_uri=corpus.uri, train=train, val=val, head_domains=heads,
            locations=bench.locations(train, val), steps=kw.pop("steps", cfg.train.steps), seed=seed + fold, **kw,
        )

    targets = p.targets or domains
    for t in targets:
        if t not in domains:
            raise ValueError(f"protocol.targets: {t!r} is not a domain of the corpus ({', '.join(domains)})")
    for fold in range(p.folds):
        if p.name == "single":
            for s in domains:
                sp = bench.protocol_splits("single", fold, s)
                jobs.append(Job((str(fold), s), [spec(f"single/{s}", fold, sp.train, sp.val, [s])], domains))
        elif p.name == "E1":
            sp = bench.protocol_splits("E1", fold)
            jobs.append(Job((str(fold),), [spec("E1", fold, sp.train, sp.val, domains)], domains))
        else:
            for t in targets:
                e2 = bench.protocol_splits("E2", fold, t)
                sources = [d for d in domains if d != t]
                pre_e2 = spec(f"E2/{t}", fold, e2.train, e2.val, sources)
                if p.name == "E2":
                    jobs.append(Job((str(fold), t), [pre_e2], [t]))
                elif p.name == "E3":
                    e3 = bench.protocol_splits("E3", fold, t)
                    ft = spec(f"E3/{t}", fold, e3.finetune, {}, sources, steps=cfg.train.finetune_steps,
                              adapting=True, use_all=True)
                    jobs.append(Job((str(fold), t), [pre_e2, ft], [t]))
                elif p.name == "E4":
                    e4 = bench.protocol_splits("E4", fold, t)
                    val_t = {t: e4.val.get(t, [])} if e4.val.get(t) else {}
                    if p.e4_start in ("E1", "both"):
                        e1 = bench.protocol_splits("E1", fold)
                        pre_e1 = spec("E1", fold, e1.train, e1.val, domains)
                        ft1 = spec(f"E4-from-E1/{t}", fold, e4.finetune, val_t, domains,
                                   steps=cfg.train.e4_steps, adapting=True)
                        jobs.append(Job((str(fold), t, "E1"), [pre_e1, ft1], [t]))
                    if p.e4_start in ("E2", "both"):
                        ft2 = spec(f"E4-from-E2/{t}", fold, e4.finetune, val_t, sources,
                                   steps=cfg.train.e4_steps, adapting=True)
                        jobs.append(Job((str(fold), t, "E2"), [pre_e2, ft2], [t]))
    return jobs


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
    metrics = evaluate_model(model_uri, corpus, job.test_domains, concurrency=1, align=cfg.metrics.align)
    metrics["checkpoint"] = model_uri
    metrics["selected"] = read_model(model_uri)["selected"]
    metrics["reused_runs"] = reused
    return metrics


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
    remote = ray.remote(num_cpus=0, max_retries=0)(_run_job)
    limit = max_concurrent(cfg)
    cfg_dict = dump(cfg)
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
            log(f"started {jobs[i].stages[-1].name} ({len(jobs) - len(pending)}/{len(jobs)})")
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            i = running.pop(ref)
            jobs[i].result = ray.get(ref)
            finished.add(jobs[i].stages[0].name)
            log(f"finished {jobs[i].stages[-1].name}: mean AUC {100 * jobs[i].result['mean_auc']:.2f}")


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and **sample** std (ddof=1) of per-fold values; the std is ``None`` for a single value (not
    measured, never 0)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), None
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


#: Metrics aggregated over folds per domain (fractions in [0, 1]; see omnivad.metrics).
FOLD_METRICS = ("auc", "ap", "pr_auc", "auc_abnormal")


def domain_headline(cfg: Config, corpus: Corpus | None, domain: str) -> str:
    """A domain's headline metric in tables: ``metrics.domain_metric`` first, then the corpus manifest's
    ``metric`` of the domain (``ap`` for XD-style domains), else ``auc``."""
    if domain in cfg.metrics.domain_metric:
        return cfg.metrics.domain_metric[domain]
    if corpus is not None and domain in corpus.manifest.domains:
        return corpus.manifest.domains[domain].metric
    return "auc"


def has_ac(cfg: Config) -> bool:
    """Whether the method has an Abnormal-Conflict classifier at all (MDVAD heads: ``mil``, ``null-mil``,
    ``nullang-mil`` on any trunk); BN-WVAD, MMIL and CoMo have none, whatever ``loss.ac`` says."""
    from omnivad.methods.registry import get_method

    return bool(getattr(get_method(cfg.model.method), "trunked", False))


def aggregate(cfg: Config, jobs: list[Job], domains: list[str], start: str | None = None,
              corpus: Corpus | None = None) -> dict[str, Any]:
    """Per-domain mean ± sample std (ddof=1) over folds with the fold count ``n``, in the ``results.json``
    shape: ``auc``, ``ap`` (sklearn average precision), ``pr_auc`` (trapezoid PR area, BN-WVAD/RTFM's "AP")
    and ``auc_abnormal`` with ``<metric>_std`` (``None`` with one fold) and ``headline``."""
    from omnivad.report.tables import selection_rule

    p = cfg.protocol
    sel = [j for j in jobs if start is None or j.key[-1] == start]
    by_domain: dict[str, list[dict[str, Any]]] = {}
    per_fold: dict[str, dict[str, Any]] = {}
    for j in sel:
        fold = j.key[0]
        for d, m in j.result["per_domain"].items():
            if p.name == "single" and d != j.key[1]:
                continue
            by_domain.setdefault(d, []).append(m)
            per_fold.setdefault(fold, {})[d] = {k: m.get(k) for k in FOLD_METRICS}
    per_domain: dict[str, dict[str, Any]] = {}
    for d in [d for d in domains if d in by_domain]:
        entry: dict[str, Any] = {"n": len(by_domain[d]), "headline": domain_headline(cfg, corpus, d)}
        for k in FOLD_METRICS:
            vals = [m[k] for m in by_domain[d] if m.get(k) is not None]
            mean, std = mean_std(vals) if len(vals) == len(by_domain[d]) else (None, None)
            entry[k], entry[f"{k}_std"] = mean, std
        per_domain[d] = entry
    fold_means = [float(np.mean([m["auc"] for m in f.values()])) for f in per_fold.values()]
    mean_auc, mean_std_ = mean_std(fold_means)
    reused = sorted({r for j in sel for r in j.result.get("reused_runs", [])})
    out: dict[str, Any] = {
        "protocol": p.name,
        "method": cfg.model.method,
        "trunk": cfg.model.trunk,
        "tag": method_tag(cfg),
    }
    if has_ac(cfg):
        out["ac"] = cfg.loss.ac
    out.update({
        "selection": cfg.train.selection,
        "selection_rule": selection_rule(cfg.train.selection),
        "best_test": cfg.train.selection == "best-test",
        "per_domain": per_domain,
        "mean_auc": mean_auc,
        "mean_auc_std": mean_std_,
        "n": len(fold_means),
        "folds": p.folds,
        "statistics": "mean and sample std (ddof=1) over n folds; std is null with one fold",
        "per_fold": per_fold,
        "checkpoints": sorted({j.result["checkpoint"] for j in sel}),
        "selected": sorted({j.result["selected"] for j in sel}),
        "reused": bool(reused),
        "reused_runs": reused,
        "align": cfg.metrics.align,
    })
    if start:
        out["start"] = start
    if p.name == "single":
        matrix: dict[str, dict[str, float]] = {s: {} for s in domains}
        for s in domains:
            for t in domains:
                vals = [j.result["per_domain"][t]["auc"] for j in sel if j.key[1] == s]
                matrix[s][t] = float(np.mean(vals))
        out_avg = {t: float(np.mean([matrix[s][t] for s in domains if s != t])) if len(domains) > 1 else float("nan") for t in domains}
        out.update(
            matrix=matrix,
            out_avg=out_avg,
            out_avg_mean=float(np.mean(list(out_avg.values()))),
            in_domain_mean=float(np.mean([matrix[t][t] for t in domains])),
        )
    return out


def package_runtime_env() -> dict[str, Any] | None:
    """``{"py_modules": [<omnivad>]}`` when omnivad is not installed where Ray workers run.

    jobs/mdvad.py sets ``OMNIVAD_SHIP_PACKAGE=1`` when it had to import omnivad from the checkout
    (e.g. ``ray job submit --working-dir .`` to a cluster whose image lacks the package); the workers
    then get the driver's copy of the package. Not when the submitted job already sets ``py_modules``.
    """
    import os

    if os.environ.get("OMNIVAD_SHIP_PACKAGE", "") not in ("1", "true", "yes"):
        return None
    job_env = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}").get("runtime_env") or {}
    if "py_modules" in job_env:
        return None
    import omnivad

    return {"py_modules": [os.path.dirname(os.path.abspath(omnivad.__file__))]}


def ensure_ray(cfg: Config) -> None:
    import os

    import ray

    from omnivad.data.ray_datasets import quiet_progress

    quiet_progress()
    if ray.is_initialized():
        return
    runtime_env = package_runtime_env()
    if cfg.ray.address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=cfg.ray.address or os.environ["RAY_ADDRESS"], log_to_driver=True, runtime_env=runtime_env)
    else:
        token = loopback_ray_env()
        ray.init(num_cpus=cfg.ray.num_cpus, include_dashboard=False, log_to_driver=True, runtime_env=runtime_env,
                 _node_ip_address="127.0.0.1")
        if token:
            print(f"[omnivad] local Ray on 127.0.0.1 only, token authentication (token file {token})", file=sys.stderr)


#: Where the embedded local Ray's token lives (0600, in a 0700 directory); ``OMNIVAD_HOME`` moves it.
def ray_token_path() -> str:
    from omnivad.config import DEFAULT_HOME

    return os.path.join(DEFAULT_HOME, "ray", "auth_token")


def loopback_ray_env() -> str | None:
    """Network defaults of the embedded local Ray (``ray.init()`` without an address), set before it starts.

    * Every Ray service binds to 127.0.0.1: Ray binds its gRPC servers (GCS, raylet, workers, object manager,
      agents, metrics export) to all interfaces unless the node IP is loopback, and on Linux it rewrites a
      ``127.0.0.1`` node IP to the machine's address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's
      single-machine mode). Both are set here, for this process and the Ray processes it starts.
    * Token authentication (``RAY_AUTH_MODE=token``) with a token omnivad makes once under
      ``OMNIVAD_HOME/ray/auth_token`` (mode 0600). An explicit ``RAY_AUTH_MODE`` in the environment is respected.

    Returns the token file when omnivad set token authentication up, else None.
    """
    import secrets

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # read at import time; ray may be imported already
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return None
    path = ray_token_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(path), 0o700)
    if not os.path.isfile(path) or os.path.getsize(path) < 32:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    os.environ.pop("RAY_AUTH_TOKEN", None)
    try:  # Ray caches its config and token at import; refresh both (what Ray's own token setup does)
        from ray._raylet import AuthenticationTokenLoader, Config as RayConfig

        RayConfig.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except ImportError:  # pragma: no cover - a Ray without token authentication
        pass
    return path


def selected_domains(cfg: Config, corpus: Corpus) -> list[str]:
    """``corpus.domains`` (default: every domain of the corpus that is not an auxiliary set merged into
    another one by ``benchmark.merge``), each checked against the corpus."""
    merged = {a for auxes in cfg.benchmark.merge.values() for a in auxes}
    domains = cfg.corpus.domains or [d for d in corpus.domains if d not in merged]
    for d in domains:
        if d not in corpus.domains:
            raise ConfigError(f"corpus.domains: {d!r} is not in {corpus.uri} ({', '.join(corpus.domains)})")
    return list(domains)


def ensure_corpus(cfg: Config) -> Corpus:
    """The corpus of ``corpus.uri``. The synthetic demo corpus is made only at its default location
    (``OMNIVAD_HOME/demo-corpus``, what a job uses when given no corpus) with ``corpus.synth_if_missing``; an
    explicit ``--corpus``/``corpus.uri`` that holds no corpus is an error naming it, never a synthetic corpus."""
    check_corpus_uri(cfg)
    if not Corpus.exists(cfg.corpus.uri):
        from omnivad.corpus.synth import ensure_demo_corpus

        ensure_demo_corpus(cfg.corpus.uri)
    return Corpus.open(cfg.corpus.uri, verify=cfg.corpus.verify)


def is_demo_uri(uri: str) -> bool:
    from omnivad.config import CorpusConfig

    default = CorpusConfig.model_fields["uri"].default
    return not uri.startswith("s3://") and os.path.abspath(os.path.expanduser(uri)) == os.path.abspath(default)


def check_corpus_uri(cfg: Config) -> None:
    """Fail (naming the URI) unless ``corpus.uri`` holds a corpus or is the demo corpus's default location."""
    uri = cfg.corpus.uri
    if Corpus.exists(uri):
        return
    if is_demo_uri(uri) and cfg.corpus.synth_if_missing:
        return
    hint = (" (corpus.synth_if_missing=false: the demo corpus is not made)" if is_demo_uri(uri) else
            "; check the path, import a corpus there (omnivad corpus import) or make one (omnivad corpus synth)")
    raise CorpusError(f"corpus.uri: no corpus at {uri} (no manifest.json){hint}")


def run_protocol(cfg: Config) -> dict[str, Any]:
    """Run ``cfg.protocol`` end to end; write ``results.json`` / ``results.md`` under ``storage.out``."""
    check_corpus_uri(cfg)  # before Ray starts
    ensure_ray(cfg)
    corpus = ensure_corpus(cfg)
    domains = selected_domains(cfg, corpus)
    if cfg.protocol.folds > cfg.benchmark.folds:
        raise ValueError(f"protocol.folds ({cfg.protocol.folds}) > benchmark.folds ({cfg.benchmark.folds})")
    fingerprint = corpus.fingerprint()
    bench = build_benchmark(corpus, cfg.benchmark, domains)
    chash = config_hash(cfg, fingerprint, bench)
    root = storage.join(cfg.storage.out, "runs", chash)
    bench.save(storage.join(root, "benchmark.json"))
    run_cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"out": root})})
    jobs = plan(run_cfg, corpus, bench, domains)
    log(f"{cfg.protocol.name} with {method_tag(cfg)}: {len(jobs)} job(s) over {cfg.protocol.folds} fold(s), "
        f"domains {', '.join(domains)}; corpus {corpus.uri} ({fingerprint})")
    t0 = time.perf_counter()
    execute(run_cfg, jobs)
    starts = [None] if cfg.protocol.name != "E4" else [s for s in ("E1", "E2") if cfg.protocol.e4_start in (s, "both")]
    results = [aggregate(cfg, jobs, domains if cfg.protocol.name in ("single", "E1") else (cfg.protocol.targets or domains), s, corpus)
               for s in starts]
    for r in results:
        r.update(config=dump(cfg), corpus={"uri": corpus.uri, "fingerprint": fingerprint}, config_hash=chash,
                 wall_s=round(time.perf_counter() - t0, 1))
    md = cross_domain_table(results[0]) if cfg.protocol.name == "single" else "".join(protocol_table([r]) for r in results)
    out_dir = storage.join(cfg.storage.out, f"{cfg.protocol.name}-{method_tag(cfg)}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    ofs, opath = storage.filesystem(out_dir)
    if len(results) == 1:
        payload = results[0]
    else:
        first = results[0]
        payload = {k: first[k] for k in ("protocol", "method", "trunk", "tag", "ac", "selection", "selection_rule",
                                         "best_test", "per_domain", "mean_auc", "mean_auc_std", "n", "folds",
                                         "statistics", "align") if k in first}
        payload.update(starts=results, config=dump(cfg), corpus=first["corpus"], config_hash=chash,
                       reused=any(r["reused"] for r in results),
                       reused_runs=sorted({x for r in results for x in r["reused_runs"]}))
    storage.write_json_atomic(ofs, storage.join(opath, "results.json"), payload)
    storage.write_bytes_atomic(ofs, storage.join(opath, "results.md"), md.encode())
    storage.write_bytes_atomic(ofs, storage.join(opath, "config.yaml"), to_yaml(cfg).encode())
    payload["results_uri"] = out_dir
    payload["table"] = md
    return payload


# ---------------------------------------------------------------------------------------------- comparisons
def parse_method_entry(entry: str) -> dict[str, Any]:
    """One ``--methods`` entry → config overrides: ``METHOD[@TRUNK][+ac|+noac]``.

    ``bn-wvad``, ``mmil``, ``como``: the method alone (its own single-head model). ``nullang-mil``, ``null-mil``,
    ``mil``: MDVAD heads on the default trunk; ``nullang-mil@bn-wvad``: the same heads and AC on BN-WVAD's encoder
    (any registered trunk). ``+ac``/``+noac`` force the Abnormal-Conflict classifier on/off (default: ``loss.ac``).
    """
    from omnivad.methods.registry import get_method
    from omnivad.methods.trunks import trunk_entry

    text = entry.strip()
    ac: bool | None = None
    for suffix, value in (("+noac", False), ("+ac", True)):
        if text.endswith(suffix):
            text, ac = text[: -len(suffix)], value
            break
    name, _, trunk = text.partition("@")
    method = get_method(name)
    trunked = getattr(method, "trunked", False)
    out: dict[str, Any] = {"model.method": name}
    if trunk:
        if not trunked:
            raise ConfigError(f"--methods {entry!r}: {name!r} has no trunk to replace (trunks go under mil, null-mil, nullang-mil)")
        trunk_entry(trunk)
        out["model.trunk"] = trunk
    elif trunked:
        out["model.trunk"] = "mdvad"
    if ac is not None:
        if not trunked:
            raise ConfigError(f"--methods {entry!r}: {name!r} has no Abnormal-Conflict classifier")
        out["loss.ac"] = ac
    elif not trunked:
        out["loss.ac"] = False  # AC is an MDVAD head option: off, so the run's tag and hash say what ran
    return out


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


def run_comparison(cfg: Config, entries: list[str]) -> dict[str, Any]:
    """Run ``cfg.protocol`` once per ``--methods`` entry (each with its own config hash and results directory),
    then write ``table10.json`` / ``table10.md`` (MDVAD Table 10 layout: one row per method) under ``storage.out``."""
    from omnivad.config import apply_override

    if not entries:
        raise ValueError("--methods: expected at least one method")
    overrides = [parse_method_entry(e) for e in entries]  # every entry checked before anything trains
    results: list[tuple[str, dict[str, Any]]] = []
    for entry, ov in zip(entries, overrides):
        data = dump(cfg)
        for k, v in ov.items():
            apply_override(data, f"{k}={json.dumps(v)}")
        log(f"comparison: {entry} ({len(results) + 1}/{len(entries)})")
        results.append((entry, run_protocol(Config.model_validate(data))))
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
