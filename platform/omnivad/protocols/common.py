"""Pieces every protocol shares: the :class:`Job` record, the config hash of a run's models, the run-spec
:class:`Planner`, split-selection helpers, fold aggregation and writing a protocol's results."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from omnivad import storage
from omnivad.config import Config, dump, identity_fields, to_yaml
from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
from omnivad.corpus.format import Corpus
from omnivad.engine.spec import RunSpec
from omnivad.errors import CorpusError
import omnivad.protocols.method_glue as method_glue

if TYPE_CHECKING:
    from omnivad.protocols.base import Protocol

Ids = dict[str, list[str]]


def log(msg: str) -> None:
    from omnivad.logs import logger

    logger().info(f"[omnivad] {msg}")


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


# --------------------------------------------------------------------------------------------------
# Planning


@dataclass
class Planner:
    """What a protocol's jobs are built from: the config, corpus, benchmark, domains and the method's tag."""

    cfg: Config
    corpus: Corpus
    bench: Benchmark
    domains: list[str]
    tag: str

    @classmethod
    def of(cls, cfg: Config, corpus: Corpus, bench: Benchmark, domains: list[str]) -> Planner:
        for t in cfg.protocol.targets or domains:
            if t not in domains:
                raise ValueError(f"protocol.targets: {t!r} is not a domain of the corpus ({', '.join(domains)})")
        return cls(cfg, corpus, bench, list(domains), method_glue.method_tag(cfg))

    @property
    def targets(self) -> list[str]:
        return list(self.cfg.protocol.targets or self.domains)

    def sources(self, target: str) -> list[str]:
        return [d for d in self.domains if d != target]

    def spec(self, name: str, fold: int, train: Ids, val: Ids, heads: list[str], **kw: Any) -> RunSpec:
        """The run ``<tag>/fold<fold>/<name>`` (steps ``train.steps`` unless given, seed ``train.seed + fold``)."""
        return RunSpec(
            name=f"{self.tag}/fold{fold}/{name}", corpus_uri=self.corpus.uri, train=train, val=val, head_domains=heads,
            locations=self.bench.locations(train, val), steps=kw.pop("steps", self.cfg.train.steps),
            seed=self.cfg.train.seed + fold, **kw,
        )


# --------------------------------------------------------------------------------------------------
# Split selection


def pick(part: Ids, domains: Iterable[str]) -> Ids:
    return {d: list(part.get(d, [])) for d in domains}


def require_test(bench: Benchmark, name: str, target: str) -> None:
    if target not in bench.test_domains():
        raise CorpusError(f"protocol {name}: target domain {target!r} has no test split")


def require_target(bench: Benchmark, name: str, target: str | None) -> list[str]:
    """Check a held-out protocol's target (given, with a test split); return the other domains."""
    if target is None:
        raise ValueError(f"protocol {name} needs a target domain")
    require_test(bench, name, target)
    return [d for d in bench.domains if d != target]


def held_out_split(name: str, fd: Fold, target: str, sources: list[str], start: str | None = None) -> ProtocolSplit:
    """Train and val of ``sources``, test of ``target`` (E2 and the pre-training of E3/E4)."""
    if not sources:
        raise ValueError(f"protocol {name}: no source domain left besides target {target!r}")
    return ProtocolSplit(
        protocol=name, fold=fd.index, target=target, start=start, source_domains=sources,
        train=pick(fd.train, sources), val=pick(fd.val, sources), test=pick(fd.test, [target]),
    )


def validation_ids(fd: Fold, domain: str) -> list[str]:
    """A domain's validation ids of ``fd``, which a search scores on (an error when there are none)."""
    from omnivad.errors import ConfigError

    ids = list(fd.val.get(domain, []))
    if not ids:
        raise ConfigError(f"benchmark.val_fraction: domain {domain!r} has no validation videos; the search scores on validation only")
    return ids


# --------------------------------------------------------------------------------------------------
# Aggregation


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


def collect(protocol: Protocol, jobs: list[Job]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """The metrics of ``jobs`` by domain (every counted job's) and by fold (``FOLD_METRICS`` per domain)."""
    by_domain: dict[str, list[dict[str, Any]]] = {}
    per_fold: dict[str, dict[str, Any]] = {}
    for j in jobs:
        for d, m in j.result["per_domain"].items():
            if not protocol.counts(j, d):
                continue
            by_domain.setdefault(d, []).append(m)
            per_fold.setdefault(j.key[0], {})[d] = {k: m.get(k) for k in FOLD_METRICS}
    return by_domain, per_fold


def domain_summary(cfg: Config, corpus: Corpus | None, domain: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """``n``, ``headline`` and each fold metric's mean and ``<metric>_std`` (both ``None`` unless every fold has it)."""
    entry: dict[str, Any] = {"n": len(metrics), "headline": domain_headline(cfg, corpus, domain)}
    for k in FOLD_METRICS:
        vals = [m[k] for m in metrics if m.get(k) is not None]
        mean, std = mean_std(vals) if len(vals) == len(metrics) else (None, None)
        entry[k], entry[f"{k}_std"] = mean, std
    return entry


#: Metrics aggregated over folds per domain and test category (``results.json`` ``per_category``).
CATEGORY_METRICS = ("auc", "ap")


def category_summary(protocol: Protocol, jobs: list[Job]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{domain: {category: {n, n_videos, auc, auc_std, ap, ap_std}}}`` over the counted jobs' ``per_category``
    (:func:`omnivad.metrics.category_metrics`): mean and sample std over folds, ``None`` unless every fold has it."""
    by: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for j in jobs:
        for d, cats in j.result.get("per_category", {}).items():
            if protocol.counts(j, d):
                for c, m in cats.items():
                    by.setdefault(d, {}).setdefault(c, []).append(m)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d, cats in by.items():
        for c, ms in cats.items():
            entry: dict[str, Any] = {"n": len(ms), "n_videos": ms[0]["n_videos"],
                                     "n_category_videos": ms[0]["n_category_videos"]}
            for k in CATEGORY_METRICS:
                vals = [m[k] for m in ms if m.get(k) is not None]
                entry[k], entry[f"{k}_std"] = mean_std(vals) if vals and len(vals) == len(ms) else (None, None)
            out.setdefault(d, {})[c] = entry
    return out


def aggregate_jobs(protocol: Protocol, cfg: Config, jobs: list[Job], domains: list[str], start: str | None = None,
                   corpus: Corpus | None = None) -> dict[str, Any]:
    """Per-domain mean ± sample std (ddof=1) over folds with the fold count ``n``, in the ``results.json``
    shape: ``auc``, ``ap`` (sklearn average precision), ``pr_auc`` (trapezoid PR area, BN-WVAD/RTFM's "AP")
    and ``auc_abnormal`` with ``<metric>_std`` (``None`` with one fold) and ``headline``."""
    from omnivad.report.tables import selection_rule

    sel = [j for j in jobs if start is None or j.key[-1] == start]
    by_domain, per_fold = collect(protocol, sel)
    per_domain = {d: domain_summary(cfg, corpus, d, by_domain[d]) for d in domains if d in by_domain}
    fold_means = [float(np.mean([m["auc"] for m in f.values()])) for f in per_fold.values()]
    mean_auc, mean_std_ = mean_std(fold_means)
    reused = sorted({r for j in sel for r in j.result.get("reused_runs", [])})
    out: dict[str, Any] = {"protocol": cfg.protocol.name, **method_glue.run_fields(cfg)}
    out.update({
        "selection": cfg.train.selection,
        "selection_rule": selection_rule(cfg.train.selection),
        "best_test": cfg.train.selection == "best-test",
        "per_domain": per_domain,
        "mean_auc": mean_auc,
        "mean_auc_std": mean_std_,
        "n": len(fold_means),
        "folds": cfg.protocol.folds,
        "statistics": "mean and sample std (ddof=1) over n folds; std is null with one fold",
        "per_fold": per_fold,
        "checkpoints": sorted({j.result["checkpoint"] for j in sel}),
        "selected": sorted({j.result["selected"] for j in sel}),
        "reused": bool(reused),
        "reused_runs": reused,
        "align": cfg.metrics.align,
    })
    per_category = category_summary(protocol, sel)
    if per_category:
        out["per_category"] = per_category
    if start:
        out["start"] = start
    return out


# --------------------------------------------------------------------------------------------------
# Results

#: The fields of a multi-start ``results.json`` copied from its first start (besides the method's fields).
SHARED_FIELDS = ("selection", "selection_rule", "best_test", "per_domain", "mean_auc", "mean_auc_std", "n", "folds",
                 "statistics", "align", "thresholds")


def results_payload(cfg: Config, results: list[dict[str, Any]], chash: str) -> dict[str, Any]:
    """The ``results.json`` of one protocol run: its only result, or the first start's headline fields with
    every start under ``starts``."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    keys = ("protocol", *method_glue.run_fields(cfg), *SHARED_FIELDS)
    payload = {k: first[k] for k in keys if k in first}
    payload.update(starts=results, config=dump(cfg), corpus=first["corpus"], config_hash=chash,
                   reused=any(r["reused"] for r in results),
                   reused_runs=sorted({x for r in results for x in r["reused_runs"]}))
    return payload


def write_results(cfg: Config, payload: dict[str, Any], md: str) -> str:
    """Write ``results.json``, ``results.md`` and ``config.yaml`` under a new directory of ``storage.out``
    (``<protocol>-<tag>-<time>``); return the directory."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = storage.join(cfg.storage.out, f"{cfg.protocol.name}-{method_glue.method_tag(cfg)}-{stamp}")
    ofs, opath = storage.filesystem(out_dir)
    storage.write_json_atomic(ofs, storage.join(opath, "results.json"), payload)
    storage.write_bytes_atomic(ofs, storage.join(opath, "results.md"), md.encode())
    storage.write_bytes_atomic(ofs, storage.join(opath, "config.yaml"), to_yaml(cfg).encode())
    return out_dir
