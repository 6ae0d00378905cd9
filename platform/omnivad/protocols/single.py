"""``single``: one model per training domain, tested on every domain (the cross-domain matrix, MDVAD §6.3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from omnivad.config import Config
from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
from omnivad.corpus.format import Corpus
from omnivad.protocols.base import Protocol, register
from omnivad.protocols.common import Job, Planner, pick


def cross_domain_matrix(jobs: list[Job], domains: list[str]) -> dict[str, Any]:
    """AUC of the model trained on ``s`` tested on ``t`` (mean over folds), the out-of-domain mean per test
    domain (``nan`` with one domain), their mean and the in-domain mean."""
    matrix: dict[str, dict[str, float]] = {s: {} for s in domains}
    for s in domains:
        for t in domains:
            vals = [j.result["per_domain"][t]["auc"] for j in jobs if j.key[1] == s]
            matrix[s][t] = float(np.mean(vals))
    out_avg = {t: float(np.mean([matrix[s][t] for s in domains if s != t])) if len(domains) > 1 else float("nan")
               for t in domains}
    return dict(
        matrix=matrix,
        out_avg=out_avg,
        out_avg_mean=float(np.mean(list(out_avg.values()))),
        in_domain_mean=float(np.mean([matrix[t][t] for t in domains])),
    )


@register
class Single(Protocol):
    """Train on ``target`` only; test every domain that has a test set. Job key ``(fold, source)``."""

    name = "single"

    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        if target is None:
            raise ValueError("protocol single needs a target (the training domain)")
        return ProtocolSplit(
            protocol=self.name, fold=fd.index, target=target, source_domains=[target],
            train=pick(fd.train, [target]), val=pick(fd.val, [target]), test=pick(fd.test, bench.test_domains()),
        )

    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        jobs = []
        for s in p.domains:
            sp = self.splits(p.bench, fold, s)
            jobs.append(Job((str(fold), s), [p.spec(f"single/{s}", fold, sp.train, sp.val, [s])], p.domains))
        return jobs

    def result_domains(self, cfg: Config, domains: list[str]) -> list[str]:
        return list(domains)

    def counts(self, job: Job, domain: str) -> bool:
        return domain == job.key[1]  # the per-domain results are in-domain; the matrix has the rest

    def aggregate(self, cfg: Config, jobs: list[Job], domains: list[str], start: str | None = None,
                  corpus: Corpus | None = None) -> dict[str, Any]:
        out = super().aggregate(cfg, jobs, domains, start, corpus)
        sel = [j for j in jobs if start is None or j.key[-1] == start]
        out.update(cross_domain_matrix(sel, domains))
        return out

    def table(self, results: list[dict[str, Any]]) -> str:
        from omnivad.report.tables import cross_domain_table

        return cross_domain_table(results[0])
