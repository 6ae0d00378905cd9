"""The MDVAD benchmark: balanced per-domain training sets, folds, validation, low-shot subsets, protocols.

Spec: ``mdvad.md`` §2.3 (building the benchmark), §6.3 (protocols), §6.4 (low-shot subsets), §11 A15–A17.

What :func:`build_benchmark` does, per domain and per fold:

1. **Pools** (§2.3.2–3, A16, A17). A domain's training pool is its ``train`` split. Auxiliary sets named in
   ``cfg.merge`` (``{"TAD": ["CADP"], "ST": ["NWPU"]}``) join the target's pool only: their abnormal videos
   come from every split (NWPU's abnormal videos exist only in its test split, A16), their normal videos
   from their ``train`` split (§2.3.3: "35 drawn from NWPU's 305 normal training videos"). An auxiliary set
   is never a domain of its own and never contributes test videos. ``cfg.aux_policy``: ``fill`` takes the
   domain's own videos first and fills the remainder from the auxiliary pool; ``pool`` samples the union.
2. **Volumes** (§2.3.1). Every domain gets ``volume_normal`` normal and ``volume_abnormal`` abnormal
   training videos; by default the smallest pool's counts (MDVAD: 210 N from TAD, 176 A from UBIF).
   ``cfg.volume="original"`` (MDVAD Table 2) instead keeps each domain's whole own ``train`` split in every
   fold (no sampling, no merged auxiliary videos; folds differ only in their validation carve-out), and the
   low-shot size follows each domain's own training-set size; ``Benchmark.volume_normal``/``volume_abnormal``
   are then ``None`` (the counts differ per domain, see ``pools``).
3. **Abnormal strata** (§2.3.5). Each abnormal video belongs to one stratum: its rarest category label in
   the pool (multi-label XD videos count once per label when counting). Pools without any category are one
   stratum (plain random). In a categorised pool, uncategorised videos form a stratum named after their
   corpus domain (CADP in TAD's pool reads as "Traffic Else", A17). ``category_balance="proportional"``
   keeps each stratum's share (largest-remainder rounding, so the total is exact and each stratum is within
   ±1 of its share); ``"equal"`` gives every stratum the same count as far as its pool allows.
4. **Folds** (§2.3.6). One shuffled order per stratum; fold ``f`` takes the next window of each order
   (cyclically), so folds are disjoint while the pool allows and overlap as little as possible after that.
   The rounding extras rotate over folds towards the strata furthest behind their cumulative share.
5. **Validation.** ``val_fraction`` of each fold's selected set, stratified by label (at least one per label
   when the class has two or more videos), is moved out of ``train`` into ``val``.
6. **Low-shot** (§6.4, A15). From each fold's ``train``: ``ceil(low_shot_fraction * volume / 2)`` normal and
   as many abnormal videos (386 → 20 + 20); abnormal spread evenly over strata, normal at random.
7. **Test** (§2.3.7). Each domain's original ``test`` split, unchanged (none when the domain has none).

Every referenced video is recorded in :attr:`Benchmark.videos` with its label, categories, stratum and the
corpus domain it must be loaded from (§2.3.8 manifest). Everything is deterministic under ``cfg.seed`` and
independent of the input row order.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, Field

from omnivad import storage
from omnivad.config import BenchmarkConfig
from omnivad.corpus.format import Corpus
from omnivad.errors import ConfigError, CorpusError

BENCHMARK_FORMAT = "omnivad-benchmark"
BENCHMARK_VERSION = 1
TRAIN_SPLIT = "train"
TEST_SPLIT = "test"
UNCATEGORISED = "(uncategorised)"
_NON_CATEGORIES = ("", "Normal")

Ids = dict[str, list[str]]




# --------------------------------------------------------------------------------------------------
# Models


class VideoInfo(BaseModel):
    """One referenced video (§2.3.8 manifest row, keyed by benchmark domain and video id)."""

    corpus_domain: str = Field(description="domain of the corpus the video is stored under (aux name for merged videos)")
    split: str = Field(description="original split in the corpus")
    label: int = Field(description="0 normal, 1 abnormal")
    category: str = ""
    categories: list[str] = Field(default_factory=list)
    source: str = Field(default="", description="dataset the video came from")
    stratum: str = Field(default="", description="sampling stratum (abnormal training videos)")


class PoolStats(BaseModel):
    """Sizes of a domain's pools (before sampling)."""

    own_normal: int = 0
    own_abnormal: int = 0
    aux_normal: int = 0
    aux_abnormal: int = 0
    aux_domains: list[str] = Field(default_factory=list)
    test_normal: int = 0
    test_abnormal: int = 0


class Fold(BaseModel):
    """One fold (§2.3.6): per-domain video ids. ``train`` excludes ``val``; ``low_shot`` ⊆ ``train``."""

    index: int
    seed: int
    train: Ids = Field(default_factory=dict)
    val: Ids = Field(default_factory=dict)
    test: Ids = Field(default_factory=dict)
    low_shot: Ids = Field(default_factory=dict)


class ProtocolSplit(BaseModel):
    """The data of one protocol run (§6.3). ``finetune``/``finetune_val`` are empty except for E3/E4."""

    protocol: str
    fold: int
    target: str | None = None
    start: str | None = Field(default=None, description="E4 only: the model fine-tuned (E1 or E2)")
    source_domains: list[str] = Field(default_factory=list, description="domains of the (pre-)training set, in head order")
    train: Ids = Field(default_factory=dict)
    val: Ids = Field(default_factory=dict)
    test: Ids = Field(default_factory=dict)
    finetune: Ids = Field(default_factory=dict)
    finetune_val: Ids = Field(default_factory=dict, description="the target's validation set, for E3/E4 fine-tuning")


class Benchmark(BaseModel):
    """A built benchmark: folds of per-domain splits plus the manifest of every referenced video."""

    format: str = BENCHMARK_FORMAT
    version: int = BENCHMARK_VERSION
    config: BenchmarkConfig
    corpus_fingerprint: str = ""
    domains: list[str]
    volume_normal: int | None = Field(description="normal training videos per domain and fold (None: volume=original)")
    volume_abnormal: int | None = Field(description="abnormal training videos per domain and fold (None: volume=original)")
    pools: dict[str, PoolStats] = Field(default_factory=dict)
    folds: list[Fold]
    videos: dict[str, dict[str, VideoInfo]] = Field(default_factory=dict)

    # -- access

    def fold(self, index: int) -> Fold:
        if not isinstance(index, int) or not 0 <= index < len(self.folds):
            raise ValueError(f"fold {index!r} does not exist (the benchmark has folds 0..{len(self.folds) - 1})")
        return self.folds[index]

    def info(self, domain: str, video_id: str) -> VideoInfo:
        try:
            return self.videos[domain][video_id]
        except KeyError:
            raise CorpusError(f"video {video_id!r} is not in benchmark domain {domain!r}") from None

    def locate(self, ids: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """Group ``{benchmark domain: ids}`` by the corpus domain to load them from (merged videos)."""
        out: dict[str, list[str]] = {}
        for domain, vids in ids.items():
            for vid in vids:
                out.setdefault(self.info(domain, vid).corpus_domain, []).append(vid)
        return out

    def locations(self, *parts: Mapping[str, Sequence[str]]) -> dict[str, dict[str, tuple[str, str]]]:
        """``{benchmark domain: {video_id: (corpus domain, split)}}`` for the videos of ``parts`` that are not
        stored under their own domain's ``train`` split: the auxiliary videos of a merge (``cfg.merge``: CADP's
        in TAD, NWPU's in ST, whose abnormal videos come from NWPU's test split). What a run reads them from."""
        out: dict[str, dict[str, tuple[str, str]]] = {}
        for ids in parts:
            for domain, vids in ids.items():
                for vid in vids:
                    info = self.info(domain, vid)
                    if (info.corpus_domain, info.split) != (domain, TRAIN_SPLIT):
                        out.setdefault(domain, {})[vid] = (info.corpus_domain, info.split)
        return out

    def test_domains(self) -> list[str]:
        """Domains that have a test set."""
        return [d for d in self.domains if self.folds and self.folds[0].test.get(d)]

    def manifest(self, fold: int) -> list[dict[str, Any]]:
        """One row per video of ``fold`` (§2.3.8): domain, video id, part, label, category, source."""
        fd = self.fold(fold)
        rows: list[dict[str, Any]] = []
        low = {d: set(ids) for d, ids in fd.low_shot.items()}
        for part in ("train", "val", "test"):
            for domain, vids in getattr(fd, part).items():
                for vid in vids:
                    v = self.videos[domain][vid]
                    rows.append(
                        {
                            "fold": fd.index,
                            "part": part,
                            "domain": domain,
                            "video_id": vid,
                            "label": v.label,
                            "category": v.category,
                            "categories": list(v.categories),
                            "source": v.source or v.corpus_domain,
                            "corpus_domain": v.corpus_domain,
                            "low_shot": part == "train" and vid in low.get(domain, set()),
                        }
                    )
        return rows

    # -- protocols (§6.3)


    # -- persistence

    def save(self, uri: str) -> str:
        """Write the benchmark as JSON (atomically) to a local path or ``s3://`` URI; returns the URI."""
        fs, path = storage.filesystem(uri)
        storage.write_json_atomic(fs, path, self.model_dump(mode="json"))
        return uri

    @classmethod
    def load(cls, uri: str) -> Benchmark:
        """Read a benchmark written by :meth:`save`."""
        fs, path = storage.filesystem(uri)
        raw = storage.read_json(fs, path)
        if not isinstance(raw, dict) or raw.get("format") != BENCHMARK_FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise CorpusError(f"{uri}: field 'format' is {got!r}, expected {BENCHMARK_FORMAT!r}")
        try:
            return cls.model_validate(raw)
        except Exception as exc:  # pydantic.ValidationError names the field
            raise CorpusError(f"{uri}: invalid benchmark: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# Building


def build_benchmark(
    corpus: Corpus | Sequence[Mapping[str, Any]],
    cfg: BenchmarkConfig | None = None,
    domains: list[str] | None = None,
) -> Benchmark:
    """Build the MDVAD benchmark (§2.3, §6.4, A15–A17) from a corpus or a list of index dicts.

    ``corpus`` is a :class:`Corpus` or rows shaped like :meth:`Corpus.index` (``video_id``, ``domain``,
    ``split``, ``label``; optional ``category``, ``categories``, ``source``). ``domains`` defaults to every
    domain that is not merged into another one (``cfg.merge``), in corpus order.
    """
    cfg = cfg or BenchmarkConfig()
    if isinstance(corpus, Corpus):
        rows = corpus.index()
        fingerprint = corpus.fingerprint()
    else:
        rows = list(corpus)
        fingerprint = ""
    by_domain = _group_rows(rows)
    aux_of = _resolve_merge(cfg.merge, by_domain)
    domains = _resolve_domains(by_domain, aux_of, domains)
    pools = {d: _Pool.build(d, by_domain, aux_of.get(d, [])) for d in domains}
    if cfg.volume == "original":
        volumes: dict[int, int | None] = {0: None, 1: None}
        selected = {d: _original_folds(pools[d], cfg, d) for d in domains}
        n_low = {d: _low_shot_size(cfg, len(pools[d].own[0]) + len(pools[d].own[1])) for d in domains}
    else:
        sampled = _volumes(cfg, pools)
        volumes = dict(sampled)
        selected = {d: _select_folds(pools[d], sampled, cfg, d) for d in domains}
        n_low = dict.fromkeys(domains, _low_shot_size(cfg, sampled[0] + sampled[1]))
    folds = [_make_fold(f, cfg, pools, selected, n_low) for f in range(cfg.folds)]
    return Benchmark(
        config=cfg.model_copy(deep=True),
        corpus_fingerprint=fingerprint,
        domains=domains,
        volume_normal=volumes[0],
        volume_abnormal=volumes[1],
        pools={d: pool.stats() for d, pool in pools.items()},
        folds=folds,
        videos={d: _referenced(pools[d], folds, d) for d in domains},
    )


def _resolve_domains(by_domain: Mapping[str, Any], aux_of: Mapping[str, list[str]], domains: list[str] | None) -> list[str]:
    """The benchmark's domains: ``domains`` checked against the corpus and the merge, else every unmerged domain."""
    merged = {a for auxes in aux_of.values() for a in auxes}
    if domains is None:
        domains = [d for d in by_domain if d not in merged]
    else:
        domains = list(domains)
        if len(set(domains)) != len(domains):
            raise ConfigError(f"benchmark domains: duplicates in {domains}")
        for d in domains:
            if d not in by_domain:
                raise CorpusError(f"no domain {d!r} in the corpus (domains: {', '.join(by_domain) or 'none'})")
            if d in merged:
                owner = next(t for t, a in aux_of.items() if d in a)
                raise ConfigError(f"benchmark.merge: {d!r} is merged into {owner!r} and cannot also be a domain")
    if not domains:
        raise CorpusError("the benchmark has no domain")
    return domains


@dataclass
class _Pool:
    """One domain's pools (§2.3.2–3, A16, A17): its own and the auxiliary training ids by label, its test ids
    and the info of every video it can reference."""

    infos: dict[str, VideoInfo]
    own: dict[int, list[str]]
    aux: dict[int, list[str]]
    tests: list[str]
    aux_domains: list[str]

    @classmethod
    def build(cls, d: str, by_domain: Mapping[str, list[dict[str, Any]]], auxes: list[str]) -> _Pool:
        pool = cls(infos={}, own={0: [], 1: []}, aux={0: [], 1: []}, tests=[], aux_domains=list(auxes))
        for r in by_domain[d]:
            pool.infos[r["video_id"]] = _info(r)
            if r["split"] == TRAIN_SPLIT:
                pool.own[r["label"]].append(r["video_id"])
            elif r["split"] == TEST_SPLIT:
                pool.tests.append(r["video_id"])
        own_ids = set(pool.infos)
        for a in auxes:
            for r in by_domain[a]:
                pool.add_aux(d, a, r, own_ids)
        _assign_strata(d, pool.infos, pool.own[1] + pool.aux[1])
        return pool

    def add_aux(self, d: str, a: str, r: Mapping[str, Any], own_ids: set[str]) -> None:
        """Add a video of auxiliary set ``a`` (abnormal from any split, normal from ``train`` only, §2.3.3)."""
        if r["label"] == 0 and r["split"] != TRAIN_SPLIT:
            return  # aux normal videos: training split only (§2.3.3)
        vid = r["video_id"]
        if vid in self.infos:
            where = "domain" if vid in own_ids else "another merged set of"
            raise CorpusError(
                f"benchmark.merge: video id {vid!r} of {a!r} is also in {where} {d!r}; ids must be unique"
            )
        self.infos[vid] = _info(r)
        self.aux[r["label"]].append(vid)

    def size(self, label: int) -> int:
        return len(self.own[label]) + len(self.aux[label])

    def stats(self) -> PoolStats:
        return PoolStats(
            own_normal=len(self.own[0]), own_abnormal=len(self.own[1]),
            aux_normal=len(self.aux[0]), aux_abnormal=len(self.aux[1]), aux_domains=list(self.aux_domains),
            test_normal=sum(self.infos[v].label == 0 for v in self.tests),
            test_abnormal=sum(self.infos[v].label == 1 for v in self.tests),
        )


def _volumes(cfg: BenchmarkConfig, pools: Mapping[str, _Pool]) -> dict[int, int]:
    """Normal (0) and abnormal (1) training videos per domain and fold (§2.3.1): as configured, else the
    smallest pool's; an error naming the domain when a pool is smaller."""
    volumes: dict[int, int] = {}
    for label, requested, what in ((0, cfg.volume_normal, "normal"), (1, cfg.volume_abnormal, "abnormal")):
        sizes = {d: pool.size(label) for d, pool in pools.items()}
        volume = requested if requested is not None else min(sizes.values())
        for d, pool in pools.items():
            if sizes[d] < volume or volume < 1:
                extra = (f" (own {len(pool.own[label])} + {len(pool.aux[label])} from {'+'.join(pool.aux_domains)})"
                         if pool.aux_domains else "")
                raise CorpusError(
                    f"domain {d!r}: {sizes[d]} {what} training videos{extra}, "
                    f"{volume} needed per fold (benchmark.volume_{what})"
                )
        volumes[label] = volume
    return volumes


def _low_shot_size(cfg: BenchmarkConfig, n_train: int) -> int:
    """Low-shot videos per class (§6.4): ``ceil(low_shot_fraction · n_train / 2)`` (386 → 20)."""
    return math.ceil(cfg.low_shot_fraction * n_train / 2 - 1e-9)


def _original_folds(pool: _Pool, cfg: BenchmarkConfig, d: str) -> list[dict[int, list[str]]]:
    """``volume=original`` (MDVAD Table 2): every fold selects the domain's whole own training split."""
    if cfg.volume_normal is not None or cfg.volume_abnormal is not None:
        raise ConfigError("benchmark.volume=original keeps every training video; unset benchmark.volume_normal "
                          "and benchmark.volume_abnormal (they apply to volume=balanced)")
    for label, what in ((0, "normal"), (1, "abnormal")):
        if not pool.own[label]:
            raise CorpusError(f"domain {d!r}: no {what} videos in its {TRAIN_SPLIT!r} split (benchmark.volume=original "
                              "trains on the domain's own training split only)")
    return [{0: list(pool.own[0]), 1: list(pool.own[1])} for _ in range(cfg.folds)]


def _select_folds(pool: _Pool, volumes: Mapping[int, int], cfg: BenchmarkConfig, d: str) -> list[dict[int, list[str]]]:
    """Each fold's selected training ids of one domain, by label."""
    per_label = {
        label: _select_with_aux(pool.own[label], pool.aux[label], pool.infos, volumes[label], label, cfg,
                                key=(cfg.seed, d, label))
        for label in (0, 1)
    }
    return [{0: per_label[0][f], 1: per_label[1][f]} for f in range(cfg.folds)]


def _make_fold(f: int, cfg: BenchmarkConfig, pools: Mapping[str, _Pool],
               selected: Mapping[str, list[dict[int, list[str]]]], n_low: Mapping[str, int]) -> Fold:
    """Fold ``f``: per domain, validation carved out of the selection, low-shot subsets of the rest, the test split."""
    seed = cfg.seed + f
    fd = Fold(index=f, seed=seed)
    for d, pool in pools.items():
        train: list[str] = []
        val: list[str] = []
        low: list[str] = []
        for label in (0, 1):
            ids = sorted(selected[d][f][label])
            n_val = _val_count(len(ids), cfg.val_fraction)
            v = set(_rng(seed, d, "val", label).sample(ids, n_val))
            tr = [i for i in ids if i not in v]
            val.extend(i for i in ids if i in v)
            train.extend(tr)
            low.extend(_low_shot(tr, pool.infos, min(n_low[d], len(tr)), label, _rng(seed, d, "low_shot", label)))
        fd.train[d] = sorted(train)
        fd.val[d] = sorted(val)
        fd.low_shot[d] = sorted(low)
        fd.test[d] = sorted(pool.tests)
    return fd


def _referenced(pool: _Pool, folds: list[Fold], d: str) -> dict[str, VideoInfo]:
    """The videos of domain ``d`` some fold uses (train, val or test), by id."""
    keep = set(pool.tests)
    for fd in folds:
        keep.update(fd.train[d])
        keep.update(fd.val[d])
    return {vid: pool.infos[vid] for vid in sorted(keep)}


# --------------------------------------------------------------------------------------------------
# Helpers


def _group_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_domain: dict[str, list[dict[str, Any]]] = {}
    seen: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        missing = [k for k in ("video_id", "domain", "split", "label") if row.get(k) is None]
        if missing:
            raise CorpusError(f"index row {i}: missing field(s) {', '.join(missing)}")
        r = dict(row)
        r["video_id"] = str(r["video_id"])
        r["label"] = int(r["label"])
        if r["label"] not in (0, 1):
            raise CorpusError(f"video {r['video_id']!r} ({r['domain']}): label {r['label']}, expected 0 or 1")
        d = str(r["domain"])
        if r["video_id"] in seen.setdefault(d, set()):
            raise CorpusError(f"video id {r['video_id']!r} occurs twice in domain {d!r}")
        seen[d].add(r["video_id"])
        by_domain.setdefault(d, []).append(r)
    for d in by_domain:  # independent of the input order
        by_domain[d].sort(key=lambda r: r["video_id"])
    return by_domain


def _resolve_merge(merge: Mapping[str, list[str]], by_domain: Mapping[str, Any]) -> dict[str, list[str]]:
    aux_of: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for target, auxes in merge.items():
        for a in auxes:
            if a == target:
                raise ConfigError(f"benchmark.merge: {target!r} cannot be merged into itself")
            if a in owner and owner[a] != target:
                raise ConfigError(f"benchmark.merge: {a!r} is merged into both {owner[a]!r} and {target!r}")
            if a in merge:
                raise ConfigError(f"benchmark.merge: {a!r} is both a merge target and merged into {target!r}")
            owner[a] = target
    for target, auxes in merge.items():
        if target not in by_domain:
            continue  # the target is not in this corpus: nothing to enlarge
        for a in auxes:
            if a not in by_domain:
                raise CorpusError(
                    f"benchmark.merge: {a!r} (merged into {target!r}) is not in the corpus "
                    f"(domains: {', '.join(by_domain)})"
                )
        aux_of[target] = list(dict.fromkeys(auxes))
    return aux_of


def _info(r: Mapping[str, Any]) -> VideoInfo:
    cats = [str(c) for c in (r.get("categories") or [])]
    category = str(r.get("category") or "")
    if not cats and category not in _NON_CATEGORIES:
        cats = [category]
    if not category:
        category = cats[0] if cats else ("Normal" if r["label"] == 0 else "")
    return VideoInfo(
        corpus_domain=str(r["domain"]),
        split=str(r["split"]),
        label=int(r["label"]),
        category=category,
        categories=cats,
        source=str(r.get("source") or r["domain"]),
    )


def _labels(v: VideoInfo) -> list[str]:
    return list(dict.fromkeys(c for c in v.categories if c not in _NON_CATEGORIES))


def _assign_strata(domain: str, infos: dict[str, VideoInfo], abnormal: list[str]) -> None:
    """Stratum of each abnormal pool video: its rarest label (§2.3.5; multi-label videos count per label)."""
    counts: dict[str, int] = {}
    for vid in abnormal:
        for c in _labels(infos[vid]):
            counts[c] = counts.get(c, 0) + 1
    categorised = bool(counts)
    for vid in abnormal:
        v = infos[vid]
        labels = _labels(v)
        if labels:
            v.stratum = min(labels, key=lambda c: (counts[c], c))
        elif categorised:
            # an uncategorised video in a categorised pool: a stratum per corpus domain (CADP: "Traffic Else", A17)
            v.stratum = UNCATEGORISED if v.corpus_domain == domain else f"({v.corpus_domain})"
        else:
            v.stratum = ""


def _rng(*key: Any) -> random.Random:
    digest = hashlib.sha256(repr(key).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _select_with_aux(
    own: list[str], aux: list[str], infos: Mapping[str, VideoInfo], volume: int, label: int,
    cfg: BenchmarkConfig, key: tuple[Any, ...],
) -> list[list[str]]:
    """Per-fold selections of one class of one domain, with the auxiliary policy (§2.3.2–3)."""
    mode = cfg.category_balance
    if not aux or cfg.aux_policy == "pool":
        return _select(own + aux, infos, volume, label, mode, cfg.folds, key)
    if len(own) >= volume:
        return _select(own, infos, volume, label, mode, cfg.folds, key)
    rest = _select(aux, infos, volume - len(own), label, mode, cfg.folds, (*key, "aux"))
    return [list(own) + r for r in rest]


def _select(
    ids: list[str], infos: Mapping[str, VideoInfo], volume: int, label: int, mode: str, folds: int,
    key: tuple[Any, ...],
) -> list[list[str]]:
    """Stratified cyclic windows over one shuffled order per stratum: fold f takes the next window."""
    groups: dict[str, list[str]] = {}
    for vid in sorted(ids):
        groups.setdefault(infos[vid].stratum if label == 1 else "", []).append(vid)
    for k, g in groups.items():
        _rng(*key, "order", k).shuffle(g)
    sizes = {k: len(g) for k, g in groups.items()}
    used = dict.fromkeys(groups, 0)
    out: list[list[str]] = []
    for f in range(folds):
        alloc = _allocate(sizes, volume, mode, used, f)
        chosen: list[str] = []
        for k in sorted(groups):
            g, n, c = groups[k], sizes[k], alloc[k]
            start = used[k] % n if n else 0
            chosen.extend(g[(start + i) % n] for i in range(c))
            used[k] += c
        out.append(chosen)
    return out


def _allocate(sizes: Mapping[str, int], volume: int, mode: str, used: Mapping[str, int], fold: int) -> dict[str, int]:
    """Counts per stratum summing to ``volume`` (≤ each stratum's size).

    ``proportional``: floor of each share plus the rounding extras (largest remainder); the extras go to
    the strata furthest behind their cumulative share over folds ``0..fold``, so they rotate over folds.
    ``equal``: water-filling — every stratum the same count, capped by its size; extras to the least used.
    """
    total = sum(sizes.values())
    if volume > total:
        raise CorpusError(f"cannot sample {volume} videos from a pool of {total}")
    keys = sorted(sizes)
    if mode == "proportional":
        share = {k: Fraction(volume * sizes[k], total) for k in keys}
        alloc = {k: math.floor(share[k]) for k in keys}
        extra = volume - sum(alloc.values())
        cands = [k for k in keys if share[k] > alloc[k]]
        cands.sort(key=lambda k: (-((fold + 1) * share[k] - used[k] - alloc[k]), -(share[k] - alloc[k]), k))
        for k in cands[:extra]:
            alloc[k] += 1
        return alloc
    if mode != "equal":
        raise ConfigError(f"benchmark.category_balance: {mode!r}, expected 'proportional' or 'equal'")
    alloc = {}
    remaining = volume
    order = sorted(keys, key=lambda k: (sizes[k], k))
    for i, k in enumerate(order):
        left = len(order) - i
        if sizes[k] * left <= remaining:
            alloc[k] = sizes[k]
            remaining -= sizes[k]
            continue
        rest = order[i:]
        base, extra = divmod(remaining, left)
        for r in rest:
            alloc[r] = base
        for r in sorted(rest, key=lambda r: (used[r], -sizes[r], r))[:extra]:
            alloc[r] += 1
        break
    return alloc


def _val_count(n: int, fraction: float) -> int:
    """Validation videos of one class: round(fraction·n), at least 1 when n ≥ 2, leaving one for training."""
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, math.floor(fraction * n + 0.5)))


def _low_shot(train: list[str], infos: Mapping[str, VideoInfo], n: int, label: int, rng: random.Random) -> list[str]:
    """Low-shot subset of one class (§6.4, A15): normal at random; abnormal spread evenly over strata."""
    if n <= 0:
        return []
    if label == 0:
        return rng.sample(sorted(train), n)
    groups: dict[str, list[str]] = {}
    for vid in sorted(train):
        groups.setdefault(infos[vid].stratum, []).append(vid)
    alloc = _allocate({k: len(g) for k, g in groups.items()}, n, "equal", dict.fromkeys(groups, 0), 0)
    out: list[str] = []
    for k in sorted(groups):
        out.extend(rng.sample(groups[k], alloc[k]))
    return out
