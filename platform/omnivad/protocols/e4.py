"""``E4`` full fine-tuning: the E1 and/or E2 model fine-tuned on the target's fold training set (MDVAD §6.3)."""

from __future__ import annotations

from omnivad.config import Config
from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
from omnivad.protocols.base import Protocol, register
from omnivad.protocols.common import Job, Planner, held_out_split, pick, require_target
from omnivad.protocols.e1 import e1_pretrain
from omnivad.protocols.e2 import e2_pretrain

STARTS = ("E1", "E2")


@register
class E4(Protocol):
    """Pre-training as E1 (``start="E1"``) or E2 (``start="E2"``); ``finetune`` = the target's full fold
    training set. Job key ``(fold, target, start)``; one result per start (``protocol.e4_start``)."""

    name = "E4"

    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        others = require_target(bench, self.name, target)
        assert target is not None
        if start not in STARTS:
            raise ValueError(f"E4 start {start!r}: expected 'E1' or 'E2'")
        sources = list(bench.domains) if start == "E1" else others
        split = held_out_split(self.name, fd, target, sources, start=start)
        split.finetune = pick(fd.train, [target])
        split.finetune_val = pick(fd.val, [target])
        return split

    def starts(self, cfg: Config) -> list[str | None]:
        return [s for s in STARTS if cfg.protocol.e4_start in (s, "both")]

    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        jobs = []
        starts = self.starts(p.cfg)
        for t in p.targets:
            pre_e2 = e2_pretrain(p, fold, t)  # checked (and its run named) whatever the start, as E2 would
            e4 = self.splits(p.bench, fold, t)
            val_t = {t: e4.val.get(t, [])} if e4.val.get(t) else {}
            for start in starts:
                pre = e1_pretrain(p, fold) if start == "E1" else pre_e2
                heads = p.domains if start == "E1" else p.sources(t)
                ft = p.spec(f"E4-from-{start}/{t}", fold, e4.finetune, val_t, heads, steps=p.cfg.train.e4_steps,
                            adapting=True)
                jobs.append(Job((str(fold), t, start), [pre, ft], [t]))
        return jobs
