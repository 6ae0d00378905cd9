"""``E2`` leave-one-out: per target, one model on the other domains, tested on the target (MDVAD §6.3)."""

from __future__ import annotations

from typing import Any

from omnivad.config import Config
from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
from omnivad.engine.spec import RunSpec
from omnivad.errors import ConfigError
from omnivad.protocols.base import Protocol, register
from omnivad.protocols.common import Job, Planner, held_out_split, require_target, validation_ids


def e2_pretrain(p: Planner, fold: int, target: str) -> RunSpec:
    """The E2 run of ``fold`` holding ``target`` out (also the pre-training of E3 and of E4 from E2)."""
    sp = E2().splits(p.bench, fold, target)
    return p.spec(f"E2/{target}", fold, sp.train, sp.val, p.sources(target))


@register
class E2(Protocol):
    """Train and val of every domain but ``target``; test ``target``. Job key ``(fold, target)``."""

    name = "E2"

    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        others = require_target(bench, self.name, target)
        assert target is not None
        return held_out_split(self.name, fd, target, others)

    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        return [Job((str(fold), t), [e2_pretrain(p, fold, t)], [t]) for t in p.targets]

    def search_runs(self, cfg: Config, bench: Benchmark, corpus_uri: str, domains: list[str], fold: int,
                    targets: list[str]) -> list[dict[str, Any]]:
        """Per target, one run on the other domains, scored on the target's validation videos (unseen domain)."""
        if len(domains) < 2:
            raise ConfigError("tune.objective: E2 needs at least two domains")
        runs = []
        for target in targets:
            if target not in domains:
                raise ConfigError(f"tune.targets: {target!r} is not a domain ({', '.join(domains)})")
            sp = self.splits(bench, fold, target)
            sources = [d for d in domains if d != target]
            spec = RunSpec(name=f"E2/{target}", corpus_uri=corpus_uri, train=sp.train,
                           val={target: validation_ids(bench.fold(fold), target)}, head_domains=sources,
                           steps=cfg.train.steps, seed=cfg.train.seed + fold)
            runs.append({"objective": self.name, "key": target, "spec": spec.model_dump(), "tested": [target]})
        return runs
