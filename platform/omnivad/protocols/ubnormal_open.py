"""``ubnormal-open``: the UBnormal open-set scenario (MDVAD §6.3, Table 9 and Table A5).

One model per fold on every domain's training set plus UBnormal's re-split one (7 heads with the six MDVAD
sources), tested on UBnormal's test set (Table 9) and on the other domains (Table A5); and, per fold, the
single-source reference trained on UBnormal alone (``ubnormal.reference``, Table 9's "UBN only" row).

The re-split (``ubnormal.resplit``, datasets/ubnormal.md's open question: the paper's 210 N / 176 A cannot be
drawn from UBnormal's train + validation splits, which hold 212 N / 120 A):

* ``disjoint`` (default, the spec's reading: the test anomaly types are unseen in training): the training pool
  is UBnormal's ``train`` and ``validation`` splits (the validation types are not test types); the test split is
  unchanged; each fold draws the benchmark's volumes capped at that pool (real lists: 210 N / 120 A).
* ``fill`` (the paper's counts literally): the abnormal shortfall is drawn (seeded) from the test split's abnormal
  videos, which leave the test set (real lists: 210 N / 176 A training, 53 N / 102 A test); test types are then
  seen in training, which results.json records (``open_set.seen_test_videos``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from omnivad.config import Config
from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit, build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.errors import ConfigError, CorpusError
from omnivad.protocols.base import Protocol, register
from omnivad.protocols.common import Job, Planner, domain_summary, mean_std, pick

TRAIN, VALIDATION, TEST = "train", "validation", "test"
OPEN, REFERENCE = "open", "reference"


def resplit_rows(rows: Sequence[Mapping[str, Any]], domain: str, mode: str, volume_abnormal: int | None,
                 seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """UBnormal's rows re-split for the open set: ``(rows with split train/test, info)``. Every row keeps its
    corpus split under ``stored_split`` (where a run loads it from). ``info``: the pool and test counts by label,
    the ids moved from the test split (``fill``) and ``mode``."""
    if mode not in ("disjoint", "fill"):
        raise ConfigError(f"ubnormal.resplit: {mode!r}, expected 'disjoint' or 'fill'")
    out: list[dict[str, Any]] = []
    for r in rows:
        if r["domain"] != domain or r["split"] not in (TRAIN, VALIDATION, TEST):
            continue
        new = dict(r, stored_split=r["split"], split=TEST if r["split"] == TEST else TRAIN)
        out.append(new)
    if not out:
        raise CorpusError(f"ubnormal.domain: no videos of domain {domain!r} in the corpus")
    moved: list[str] = []
    pool_abnormal = sum(1 for r in out if r["split"] == TRAIN and int(r["label"]) == 1)
    if mode == "fill" and volume_abnormal is not None and pool_abnormal < volume_abnormal:
        candidates = sorted(str(r["video_id"]) for r in out if r["split"] == TEST and int(r["label"]) == 1)
        need = min(volume_abnormal - pool_abnormal, len(candidates))
        moved = sorted(random.Random(f"ubnormal-fill/{seed}").sample(candidates, need))
        chosen = set(moved)
        for r in out:
            if str(r["video_id"]) in chosen:
                r["split"] = TRAIN
    counts = {s: {"normal": sum(1 for r in out if r["split"] == s and int(r["label"]) == 0),
                  "abnormal": sum(1 for r in out if r["split"] == s and int(r["label"]) == 1)} for s in (TRAIN, TEST)}
    info = {"domain": domain, "mode": mode, "pool": counts[TRAIN], "test": counts[TEST],
            "seen_test_videos": moved}
    return out, info


def open_set_benchmark(cfg: Config, rows: Sequence[Mapping[str, Any]], domains: list[str]) -> tuple[Benchmark, dict[str, Any]]:
    """The MDVAD benchmark of the other domains plus UBnormal re-split (:func:`resplit_rows`), UBnormal's per-fold
    volumes the others' capped at its pool. Returns the benchmark and the re-split info (with ``volumes``)."""
    ubn = cfg.ubnormal.domain
    if ubn not in domains:
        raise ConfigError(f"ubnormal.domain: {ubn!r} is not a domain of the run ({', '.join(domains)}); "
                          "import UBnormal as that domain or set ubnormal.domain")
    others = [d for d in domains if d != ubn]
    if not others:
        raise ConfigError(f"protocol ubnormal-open: no training domain besides {ubn!r}")
    main = build_benchmark([r for r in rows if r["domain"] in others], cfg.benchmark, others)
    ubn_rows, info = resplit_rows(rows, ubn, cfg.ubnormal.resplit, main.volume_abnormal, cfg.benchmark.seed)
    vol_n = min(main.volume_normal, info["pool"]["normal"])
    vol_a = min(main.volume_abnormal, info["pool"]["abnormal"])
    if vol_n < 1 or vol_a < 1:
        raise CorpusError(f"domain {ubn!r}: the open-set training pool has {info['pool']['normal']} normal and "
                          f"{info['pool']['abnormal']} abnormal videos (train + validation splits); need at least one each")
    sub_cfg = cfg.benchmark.model_copy(update={"volume_normal": vol_n, "volume_abnormal": vol_a, "merge": {}})
    side = build_benchmark(ubn_rows, sub_cfg, [ubn])
    stored = {str(r["video_id"]): r["stored_split"] for r in ubn_rows}
    for vid, v in side.videos[ubn].items():
        v.split = stored[vid]  # loaded from the split it is stored under (locations)
    info["volumes"] = {"normal": vol_n, "abnormal": vol_a}
    return merge_benchmarks(main, side, domains), info


def merge_benchmarks(main: Benchmark, side: Benchmark, order: list[str]) -> Benchmark:
    """``main`` with ``side``'s domains added (their folds, pools and videos), domains in ``order``."""
    folds = []
    for a, b in zip(main.folds, side.folds, strict=True):
        folds.append(Fold(index=a.index, seed=a.seed, **{
            part: {d: (getattr(a, part).get(d) if d in main.domains else getattr(b, part).get(d)) or [] for d in order}
            for part in ("train", "val", "test", "low_shot")}))
    return main.model_copy(update={
        "domains": list(order), "folds": folds, "pools": {**main.pools, **side.pools},
        "videos": {d: (main.videos.get(d) if d in main.domains else side.videos.get(d)) or {} for d in order},
    })


@register
class UBnormalOpen(Protocol):
    """Train every domain with UBnormal re-split; test every domain. Job key ``(fold, "open"|"reference")``."""

    name = "ubnormal-open"

    def benchmark(self, cfg: Config, corpus: Corpus, domains: list[str]) -> Benchmark:
        bench, _ = open_set_benchmark(cfg, corpus.index(), domains)
        return bench

    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        doms = [target] if target is not None else list(bench.domains)
        return ProtocolSplit(
            protocol=self.name, fold=fd.index, target=target, source_domains=doms, train=pick(fd.train, doms),
            val=pick(fd.val, doms), test=pick(fd.test, [d for d in bench.test_domains() if target in (None, d)]),
        )

    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        ubn = p.cfg.ubnormal.domain
        if ubn not in p.domains:
            raise ConfigError(f"ubnormal.domain: {ubn!r} is not a domain of the run ({', '.join(p.domains)})")
        sp = self.splits(p.bench, fold)
        jobs = [Job((str(fold), OPEN), [p.spec("ubnormal-open/all", fold, sp.train, sp.val, p.domains)],
                    [d for d in p.domains if d in p.bench.test_domains()])]
        if p.cfg.ubnormal.reference:
            ref = self.splits(p.bench, fold, ubn)
            jobs.append(Job((str(fold), REFERENCE), [p.spec(f"ubnormal-open/{ubn}-only", fold, ref.train, ref.val, [ubn])],
                            [ubn]))
        return jobs

    def result_domains(self, cfg: Config, domains: list[str]) -> list[str]:
        return list(domains)

    def counts(self, job: Job, domain: str) -> bool:
        return job.key[1] == OPEN  # the reference is reported apart (``reference``)

    def aggregate(self, cfg: Config, jobs: list[Job], domains: list[str], start: str | None = None,
                  corpus: Corpus | None = None) -> dict[str, Any]:
        out = super().aggregate(cfg, jobs, domains, start, corpus)
        ubn = cfg.ubnormal.domain
        opened = [j for j in jobs if j.key[1] == OPEN]
        others = [d for d in domains if d != ubn]
        fold_means = [float(np.mean([j.result["per_domain"][d]["auc"] for d in others])) for j in opened if others]
        out["others_mean_auc"], out["others_mean_auc_std"] = mean_std(fold_means)
        refs = [j.result["per_domain"][ubn] for j in jobs if j.key[1] == REFERENCE]
        out["reference"] = {ubn: domain_summary(cfg, corpus, ubn, refs)} if refs else {}
        out["open_set"] = {"domain": ubn, "resplit": cfg.ubnormal.resplit}
        if corpus is not None:  # the re-split's counts (deterministic: the benchmark's own draw)
            out["open_set"].update(open_set_benchmark(cfg, corpus.index(), domains)[1])
        return out

    def table(self, results: list[dict[str, Any]]) -> str:
        from omnivad.report.paper_tables import open_set_tables

        return "".join(t.markdown() for t in open_set_tables(results))
