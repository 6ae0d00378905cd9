"""``E3`` low-shot adaptation: E2's model fine-tuned on the target's low-shot subset (MDVAD §6.4)."""

from __future__ import annotations

from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
from omnivad.protocols.base import Protocol, register
from omnivad.protocols.common import Job, Planner, held_out_split, pick, require_target
from omnivad.protocols.e2 import e2_pretrain


@register
class E3(Protocol):
    """Pre-training as E2; ``finetune`` = the target's low-shot subset. Job key ``(fold, target)``."""

    name = "E3"

    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        others = require_target(bench, self.name, target)
        assert target is not None
        split = held_out_split(self.name, fd, target, others)
        split.finetune = pick(fd.low_shot, [target])
        split.finetune_val = pick(fd.val, [target])
        return split

    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        jobs = []
        for t in p.targets:
            pre = e2_pretrain(p, fold, t)
            e3 = self.splits(p.bench, fold, t)
            ft = p.spec(f"E3/{t}", fold, e3.finetune, {}, p.sources(t), steps=p.cfg.train.finetune_steps,
                        adapting=True, use_all=True)
            jobs.append(Job((str(fold), t), [pre, ft], [t]))
        return jobs
