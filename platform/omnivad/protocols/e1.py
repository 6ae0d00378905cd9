"""``E1`` held-in: one model on every domain's training set, tested on every domain (MDVAD §6.3)."""

from __future__ import annotations

from typing import Any

from omnivad.config import Config
from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
from omnivad.engine.spec import RunSpec
from omnivad.protocols.base import Protocol, register
from omnivad.protocols.common import Job, Planner, pick, require_test, validation_ids


def e1_pretrain(p: Planner, fold: int) -> RunSpec:
    """The E1 run of ``fold`` (also the start of E4 from E1: the same run, trained once)."""
    sp = E1().splits(p.bench, fold)
    return p.spec("E1", fold, sp.train, sp.val, p.domains)


@register
class E1(Protocol):
    """Train and val of every domain; test every domain (only ``target`` when given). Job key ``(fold,)``."""

    name = "E1"

    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        if target is not None:
            require_test(bench, self.name, target)
        return ProtocolSplit(
            protocol=self.name, fold=fd.index, target=target, source_domains=list(bench.domains),
            train=pick(fd.train, bench.domains), val=pick(fd.val, bench.domains),
            test=pick(fd.test, [target] if target is not None else bench.test_domains()),
        )

    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        return [Job((str(fold),), [e1_pretrain(p, fold)], p.domains)]

    def result_domains(self, cfg: Config, domains: list[str]) -> list[str]:
        return list(domains)

    def search_runs(self, cfg: Config, bench: Benchmark, corpus_uri: str, domains: list[str], fold: int,
                    targets: list[str]) -> list[dict[str, Any]]:
        """One run on every domain, scored on every domain's validation videos."""
        sp = self.splits(bench, fold)
        val = {d: validation_ids(bench.fold(fold), d) for d in domains}
        spec = RunSpec(name="E1", corpus_uri=corpus_uri, train=sp.train, val=val, head_domains=domains,
                       steps=cfg.train.steps, seed=cfg.train.seed + fold)
        tested = [d for d in domains if d in bench.test_domains()]
        return [{"objective": self.name, "key": "E1", "spec": spec.model_dump(), "tested": tested}]
