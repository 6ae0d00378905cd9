"""MDVAD benchmark builder (spec mdvad.md §2.3, §6.3–6.5, A15–A17) on synthetic index rows."""

from __future__ import annotations

import random
from collections import Counter
from itertools import combinations

import numpy as np
import pytest

from omnivad.config import BenchmarkConfig
from omnivad.corpus.benchmark import Benchmark, ProtocolSplit, build_benchmark
from omnivad.corpus.format import Corpus, Video, write_videos
from omnivad.errors import ConfigError, CorpusError
from omnivad.protocols import list_protocols, protocol_splits

SIX = ["UCFC", "XD", "LAD", "UBIF", "TAD", "ST"]
MERGE = {"TAD": ["CADP"], "ST": ["NWPU"]}

# Table A1 shapes: train normal, per-category train abnormal (None = uncategorised), test normal, test abnormal
UCFC_CATS = dict(zip(
    ["Abuse", "Arrest", "Arson", "Assault", "Accident", "Burglary", "Explosion", "Fighting", "Robbery",
     "Shooting", "Stealing", "Shoplifting", "Vandalism"],
    [150, 120, 100, 90, 80, 70, 50, 45, 40, 30, 20, 10, 5],
))  # 810
XD_CATS = dict(zip(["Fighting", "Shooting", "Riot", "Abuse", "Car Accident", "Explosion"], [700, 500, 300, 200, 150, 55]))
LAD_CATS = dict(zip(
    ["Crash", "Crowd", "Destroy", "Drop", "Falling", "Fall Into Water", "Fighting", "Fire", "Hurt", "Loitering",
     "Panic", "Thieving", "Trampled", "Violence"],
    [60, 55, 50, 45, 40, 38, 36, 34, 30, 28, 25, 20, 12, 9],
))  # 482
TAD_CATS = dict(zip(
    ["Vehicle Accidents", "Illegal Turns", "Illegal Occupations", "Retrograde Motion", "Pedestrian on Road",
     "Road Spills", "The Else"],
    [60, 40, 30, 25, 15, 12, 8],
))  # 190


def _rows(domain, split, n_normal, abnormal, *, multi_every=0, prefix=None):
    """Index rows: ``abnormal`` is a count (uncategorised) or {category: count}."""
    prefix = prefix or domain
    rows = [
        dict(video_id=f"{prefix}_{split}_N{i:04d}", domain=domain, split=split, label=0, category="Normal",
             categories=["Normal"], source=domain)
        for i in range(n_normal)
    ]
    if isinstance(abnormal, int):
        rows += [
            dict(video_id=f"{prefix}_{split}_A{i:04d}", domain=domain, split=split, label=1, category="",
                 categories=[], source=domain)
            for i in range(abnormal)
        ]
        return rows
    cats = list(abnormal)
    i = 0
    for ci, (cat, n) in enumerate(abnormal.items()):
        for _ in range(n):
            labels = [cat]
            if multi_every and i % multi_every == 0:
                labels.append(cats[(ci + 1) % len(cats)])
            rows.append(dict(video_id=f"{prefix}_{split}_A{i:04d}", domain=domain, split=split, label=1,
                             category=cat, categories=labels, source=domain))
            i += 1
    return rows


def mdvad_rows() -> list[dict]:
    rows: list[dict] = []
    rows += _rows("UCFC", "train", 800, UCFC_CATS) + _rows("UCFC", "test", 150, 140)
    rows += _rows("XD", "train", 2049, XD_CATS, multi_every=7) + _rows("XD", "test", 300, 500)
    rows += _rows("LAD", "train", 958, LAD_CATS) + _rows("LAD", "test", 280, 280)
    rows += _rows("UBIF", "train", 757, 176) + _rows("UBIF", "test", 27, 40)
    rows += _rows("TAD", "train", 210, TAD_CATS) + _rows("TAD", "test", 40, 60)
    rows += _rows("ST", "train", 175, 63) + _rows("ST", "test", 155, 44)
    rows += _rows("CADP", "train", 0, 1416)
    rows += _rows("NWPU", "train", 305, 0) + _rows("NWPU", "test", 118, 124)
    return rows


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return mdvad_rows()


@pytest.fixture(scope="module")
def bench(rows) -> Benchmark:
    return build_benchmark(rows, BenchmarkConfig(merge=MERGE))


def _labels(b: Benchmark, domain: str, ids) -> Counter:
    return Counter(b.videos[domain][v].label for v in ids)


def _selected(b: Benchmark, f: int, d: str) -> list[str]:
    return b.folds[f].train[d] + b.folds[f].val[d]


def _abnormal_by_stratum(b: Benchmark, d: str, ids) -> Counter:
    return Counter(b.videos[d][v].stratum for v in ids if b.videos[d][v].label == 1)


# --------------------------------------------------------------------------------------------------
# volumes and counts


def test_default_volumes_are_the_smallest_merged_pools(bench):
    assert bench.domains == SIX  # the merged sets are not domains
    assert (bench.volume_normal, bench.volume_abnormal) == (210, 176)  # TAD's normal, UBIF's abnormal
    assert bench.pools["ST"].aux_normal == 305 and bench.pools["ST"].aux_abnormal == 124
    assert bench.pools["TAD"].aux_abnormal == 1416 and bench.pools["TAD"].aux_domains == ["CADP"]


def test_counts_per_domain_per_fold_are_exact(bench):
    assert len(bench.folds) == 3
    for f, fd in enumerate(bench.folds):
        assert fd.index == f and fd.seed == f
        for d in SIX:
            sel = _selected(bench, f, d)
            assert len(sel) == len(set(sel)) == 386
            assert _labels(bench, d, sel) == Counter({0: 210, 1: 176})


def test_default_volume_without_merge_is_smallest_domain(rows):
    b = build_benchmark(rows, BenchmarkConfig(folds=1), domains=SIX)
    assert (b.volume_normal, b.volume_abnormal) == (175, 63)  # ST's own counts
    for d in SIX:
        assert _labels(b, d, _selected(b, 0, d)) == Counter({0: 175, 1: 63})


def test_explicit_volumes(rows):
    b = build_benchmark(rows, BenchmarkConfig(volume_normal=100, volume_abnormal=50, folds=2), domains=SIX)
    for f in range(2):
        for d in SIX:
            assert _labels(b, d, _selected(b, f, d)) == Counter({0: 100, 1: 50})


def test_too_few_videos_names_domain_and_counts():
    rows = _rows("A", "train", 100, 40) + _rows("B", "train", 50, 40)
    with pytest.raises(CorpusError, match=r"'B'.*50 normal.*80"):
        build_benchmark(rows, BenchmarkConfig(volume_normal=80))
    with pytest.raises(CorpusError, match=r"'A'.*40 abnormal.*41"):
        build_benchmark(rows, BenchmarkConfig(volume_abnormal=41))


# --------------------------------------------------------------------------------------------------
# categories


@pytest.mark.parametrize("domain,cats", [("UCFC", UCFC_CATS), ("LAD", LAD_CATS), ("TAD", TAD_CATS)])
def test_proportional_category_shares_within_one(bench, domain, cats):
    total = sum(cats.values())
    for f in range(3):
        got = _abnormal_by_stratum(bench, domain, _selected(bench, f, domain))
        assert sum(got.values()) == 176
        for c, n in cats.items():
            assert abs(got[c] - 176 * n / total) <= 1, (f, c, got[c])


def test_multilabel_videos_counted_once_and_stratified(bench):
    xd = bench.videos["XD"]
    multi = [v for v in xd.values() if len(v.categories) > 1]
    assert multi
    for v in xd.values():
        if v.label == 1 and v.split == "train":
            assert v.stratum in v.categories
    # strata shares of the pool kept within ±1
    pool = Counter(v.stratum for v in _all_xd_pool_strata())
    total = sum(pool.values())
    for f in range(3):
        got = _abnormal_by_stratum(bench, "XD", _selected(bench, f, "XD"))
        for s, n in pool.items():
            assert abs(got[s] - 176 * n / total) <= 1


def _all_xd_pool_strata():
    """Every XD abnormal training video with its stratum (a build that selects the whole pool)."""
    cfg = BenchmarkConfig(folds=1, volume_normal=10, volume_abnormal=1905)
    b = build_benchmark(_rows("XD", "train", 10, XD_CATS, multi_every=7), cfg)
    return [v for v in b.videos["XD"].values() if v.label == 1]


def test_rarest_label_is_the_stratum():
    rows = _rows("X", "train", 10, {"common": 20, "rare": 4})
    rows[10]["categories"] = ["common", "rare"]  # first abnormal video carries both labels
    b = build_benchmark(rows, BenchmarkConfig(folds=1, volume_normal=5, volume_abnormal=24))
    assert b.videos["X"][rows[10]["video_id"]].stratum == "rare"


def test_equal_mode_evens_categories(rows):
    b = build_benchmark(rows, BenchmarkConfig(merge=MERGE, category_balance="equal"))
    for f in range(3):
        got = _abnormal_by_stratum(b, "UCFC", _selected(b, f, "UCFC"))
        assert sum(got.values()) == 176
        counts = {c: got[c] for c in UCFC_CATS}
        assert counts["Vandalism"] == 5 and counts["Shoplifting"] == 10  # whole (small) pools
        free = [n for c, n in counts.items() if n < UCFC_CATS[c]]
        assert max(free) - min(free) <= 1
        for a, b_ in combinations(UCFC_CATS, 2):  # a stratum far below another is exhausted
            if counts[a] < counts[b_] - 1:
                assert counts[a] == UCFC_CATS[a]
    p = build_benchmark(rows, BenchmarkConfig(merge=MERGE, folds=1))
    prop = _abnormal_by_stratum(p, "UCFC", _selected(p, 0, "UCFC"))
    assert prop["Abuse"] >= 32 and prop["Vandalism"] <= 2  # proportional keeps the big share (176·150/810 ≈ 32.6)


def test_uncategorised_domain_is_one_stratum(bench):
    assert {bench.videos["UBIF"][v].stratum for v in _selected(bench, 0, "UBIF") if bench.videos["UBIF"][v].label} == {""}


# --------------------------------------------------------------------------------------------------
# folds


def test_folds_disjoint_when_pool_allows():
    # pool = 3 × volume, uneven categories
    rows = _rows("X", "train", 30, {"a": 5, "b": 12, "c": 13}) + _rows("X", "test", 2, 2)
    b = build_benchmark(rows, BenchmarkConfig(volume_normal=10, volume_abnormal=10))
    sets = [set(_selected(b, f, "X")) for f in range(3)]
    for s1, s2 in combinations(sets, 2):
        assert not s1 & s2
    assert set().union(*sets) == {r["video_id"] for r in rows if r["split"] == "train"}
    for f in range(3):
        got = _abnormal_by_stratum(b, "X", _selected(b, f, "X"))
        for c, n in {"a": 5, "b": 12, "c": 13}.items():
            assert abs(got[c] - 10 * n / 30) <= 1


def test_folds_overlap_minimally_when_pool_is_small():
    rows = _rows("X", "train", 15, 15)
    b = build_benchmark(rows, BenchmarkConfig(volume_normal=10, volume_abnormal=10))
    uses = Counter(v for f in range(3) for v in _selected(b, f, "X"))
    assert set(uses.values()) == {2}  # 3·10 draws over 15 videos: each exactly twice
    assert len({frozenset(_selected(b, f, "X")) for f in range(3)}) == 3


def test_mdvad_folds_differ(bench):
    for d in ["UCFC", "XD"]:  # pools ≥ 3 × volume: disjoint
        sets = [set(_selected(bench, f, d)) for f in range(3)]
        for s1, s2 in combinations(sets, 2):
            assert not s1 & s2, d
    # LAD: 958 normal ≥ 3·210 → disjoint; 482 abnormal < 3·176 → each used at most ceil(528/482) = 2 times
    lad = [set(_selected(bench, f, "LAD")) for f in range(3)]
    uses = Counter(v for s in lad for v in s)
    assert max(n for v, n in uses.items() if bench.videos["LAD"][v].label == 0) == 1
    assert max(n for v, n in uses.items() if bench.videos["LAD"][v].label == 1) == 2
    # TAD normal: 210 of 210 → the same in every fold; abnormal 176 of 190 → minimal overlap (differs)
    tad = [set(_selected(bench, f, "TAD")) for f in range(3)]
    assert tad[0] != tad[1] != tad[2]
    uses = Counter(v for s in tad for v in s if bench.videos["TAD"][v].label == 1)
    assert max(uses.values()) - min(uses.values()) <= 1 and len(uses) == 190


# --------------------------------------------------------------------------------------------------
# merges (§2.3.2–3, A16, A17)


def test_merge_fill_own_first_and_aux_never_tested(bench, rows):
    st_train = {r["video_id"] for r in rows if r["domain"] == "ST" and r["split"] == "train"}
    nwpu_train_normal = {r["video_id"] for r in rows if r["domain"] == "NWPU" and r["split"] == "train"}
    nwpu_abnormal = {r["video_id"] for r in rows if r["domain"] == "NWPU" and r["label"] == 1}
    st_test = sorted(r["video_id"] for r in rows if r["domain"] == "ST" and r["split"] == "test")
    tad_train_abnormal = {r["video_id"] for r in rows if r["domain"] == "TAD" and r["split"] == "train" and r["label"]}
    for f in range(3):
        sel = set(_selected(bench, f, "ST"))
        assert st_train <= sel  # own first: all 175 + 63
        aux = sel - st_train
        by_label = Counter(bench.videos["ST"][v].label for v in aux)
        assert by_label == Counter({0: 35, 1: 113})
        assert {v for v in aux if bench.videos["ST"][v].label == 0} <= nwpu_train_normal
        assert {v for v in aux if bench.videos["ST"][v].label == 1} <= nwpu_abnormal
        assert all(bench.videos["ST"][v].corpus_domain == "NWPU" and bench.videos["ST"][v].source == "NWPU" for v in aux)
        assert bench.folds[f].test["ST"] == st_test  # original test split unchanged
        assert all(bench.videos["ST"][v].corpus_domain == "ST" for v in bench.folds[f].test["ST"])
        # TAD has 190 ≥ 176 own abnormal: fill takes none from CADP
        tad_ab = {v for v in _selected(bench, f, "TAD") if bench.videos["TAD"][v].label == 1}
        assert tad_ab <= tad_train_abnormal
    for fd in bench.folds:
        assert set(fd.test) == set(SIX)
        for d, ids in fd.test.items():
            assert not any(bench.videos[d][v].corpus_domain in ("CADP", "NWPU") for v in ids)
    loc = bench.locate({"ST": _selected(bench, 0, "ST")})
    assert len(loc["ST"]) == 238 and len(loc["NWPU"]) == 148


def test_merge_pool_policy_samples_the_union(rows):
    b = build_benchmark(rows, BenchmarkConfig(merge=MERGE, aux_policy="pool", folds=1))
    tad = _selected(b, 0, "TAD")
    src = Counter(b.videos["TAD"][v].corpus_domain for v in tad if b.videos["TAD"][v].label == 1)
    assert sum(src.values()) == 176
    assert abs(src["CADP"] - 176 * 1416 / 1606) <= 1  # CADP is its own stratum ("Traffic Else", A17)
    assert b.videos["TAD"][next(v for v in tad if b.videos["TAD"][v].corpus_domain == "CADP")].stratum == "(CADP)"
    assert all(b.videos["TAD"][v].corpus_domain == "TAD" for v in b.folds[0].test["TAD"])


def test_merge_errors(rows):
    with pytest.raises(CorpusError, match="'MISSING'"):
        build_benchmark(rows, BenchmarkConfig(merge={"TAD": ["MISSING"]}))
    with pytest.raises(ConfigError, match="'CADP'"):
        build_benchmark(rows, BenchmarkConfig(merge=MERGE), domains=SIX + ["CADP"])
    clash = _rows("A", "train", 20, 10) + _rows("AUX", "train", 5, 5, prefix="A")
    with pytest.raises(CorpusError, match="unique"):
        build_benchmark(clash, BenchmarkConfig(merge={"A": ["AUX"]}))
    with pytest.raises(CorpusError, match="'NOPE'"):
        build_benchmark(rows, BenchmarkConfig(), domains=["NOPE"])


# --------------------------------------------------------------------------------------------------
# validation and low-shot


def test_val_disjoint_from_train_and_stratified(bench):
    for fd in bench.folds:
        for d in SIX:
            tr, va = set(fd.train[d]), set(fd.val[d])
            assert not tr & va
            assert _labels(bench, d, va) == Counter({0: 21, 1: 18})  # round(0.1·210), round(0.1·176)
            assert len(tr) == 386 - 39


def test_val_small_classes():
    rows = _rows("X", "train", 3, 1)
    b = build_benchmark(rows, BenchmarkConfig(folds=1, val_fraction=0.1))
    assert _labels(b, "X", b.folds[0].val["X"]) == Counter({0: 1})  # ≥1 when ≥2 videos; none from a single one
    b0 = build_benchmark(rows, BenchmarkConfig(folds=1, val_fraction=0.0))
    assert b0.folds[0].val["X"] == [] and len(b0.folds[0].train["X"]) == 4


def test_low_shot_20_plus_20_balanced(bench):
    for fd in bench.folds:
        for d in SIX:
            ls = fd.low_shot[d]
            assert set(ls) <= set(fd.train[d])
            assert _labels(bench, d, ls) == Counter({0: 20, 1: 20})
        ucfc = _abnormal_by_stratum(bench, "UCFC", fd.low_shot["UCFC"])
        assert len(ucfc) == 13 and max(ucfc.values()) - min(ucfc.values()) <= 1
        tad = _abnormal_by_stratum(bench, "TAD", fd.low_shot["TAD"])
        assert len(tad) == 7 and max(tad.values()) - min(tad.values()) <= 1
    assert bench.folds[0].low_shot["UCFC"] != bench.folds[1].low_shot["UCFC"]


def test_low_shot_size_follows_fraction(rows):
    b = build_benchmark(rows, BenchmarkConfig(merge=MERGE, folds=1, low_shot_fraction=0.2))
    assert _labels(b, "UCFC", b.folds[0].low_shot["UCFC"]) == Counter({0: 39, 1: 39})  # ceil(0.2·386/2)


# --------------------------------------------------------------------------------------------------
# determinism and persistence


def test_deterministic_under_seed_and_order(rows, bench):
    shuffled = list(rows)
    random.Random(5).shuffle(shuffled)
    again = build_benchmark(shuffled, BenchmarkConfig(merge=MERGE), domains=SIX)  # default order = first seen
    assert again.model_dump() == bench.model_dump()
    other = build_benchmark(rows, BenchmarkConfig(merge=MERGE, seed=1))
    assert other.folds[0].train["UCFC"] != bench.folds[0].train["UCFC"]
    assert other.folds[0].seed == 1


def test_save_load_round_trip(bench, tmp_path):
    path = str(tmp_path / "sub" / "benchmark.json")
    bench.save(path)
    loaded = Benchmark.load(path)
    assert loaded == bench
    assert protocol_splits(loaded, "E3", 1, "ST") == protocol_splits(bench, "E3", 1, "ST")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(CorpusError, match="format"):
        Benchmark.load(str(bad))


def test_corpus_input(tmp_path):
    uri = str(tmp_path / "corpus")
    vids = []
    for d in ("A", "B"):
        for split, n in (("train", 8), ("test", 2)):
            for i in range(n):
                vids.append(Video(video_id=f"{d}{split}{i}", domain=d, split=split, label=i % 2,
                                  features=np.zeros((2, 1, 4), np.float32),
                                  categories=(["c1"] if i % 4 == 1 else ["c2"]) if i % 2 else []))
    write_videos(uri, vids, feature_dim=4)
    corpus = Corpus.open(uri)
    b = build_benchmark(corpus, BenchmarkConfig(folds=2))
    assert b.corpus_fingerprint == corpus.fingerprint() != ""
    assert (b.volume_normal, b.volume_abnormal) == (4, 4)
    assert b.folds[0].test["A"] == ["Atest0", "Atest1"]


# --------------------------------------------------------------------------------------------------
# protocols (§6.3)


def _all_splits(b: Benchmark):
    for protocol in list_protocols():
        for f in range(len(b.folds)):
            if protocol == "single":
                targets = list(b.domains)
            elif protocol == "E1":
                targets = [None, *b.test_domains()]
            else:
                targets = b.test_domains()
            for t in targets:
                for start in (("E1", "E2") if protocol == "E4" else ("E1",)):
                    yield protocol_splits(b, protocol, f, t, start=start)


def test_no_test_video_in_train_val_or_finetune_for_any_protocol(bench):
    n = 0
    for sp in _all_splits(bench):
        n += 1
        test = {(d, v) for d, ids in sp.test.items() for v in ids}
        test_bare = {v for _, v in test}
        assert test
        for part in (sp.train, sp.val, sp.finetune, sp.finetune_val):
            used = {(d, v) for d, ids in part.items() for v in ids}
            assert not used & test, (sp.protocol, sp.fold, sp.target)
            assert not {v for _, v in used} & test_bare
            for d, ids in part.items():  # nothing of another corpus split leaks through merged sets either
                assert not any(bench.videos[d][v].split == "test" and bench.videos[d][v].corpus_domain == d for v in ids)
    assert n == 3 * (6 + 7 + 6 + 6 + 12 + 6)  # ubnormal-open: one split per target, as E2 and E3


def test_protocol_contents(bench):
    fd = bench.folds[2]
    single = protocol_splits(bench, "single", 2, "TAD")
    assert single.source_domains == ["TAD"] and set(single.test) == set(SIX) and not single.finetune
    e1 = protocol_splits(bench, "E1", 2)
    assert e1.train == fd.train and e1.val == fd.val and e1.test == fd.test and e1.source_domains == SIX
    e2 = protocol_splits(bench, "e2", 2, "UBIF")
    assert e2.protocol == "E2" and "UBIF" not in e2.train and list(e2.test) == ["UBIF"] and not e2.finetune
    e3 = protocol_splits(bench, "E3", 2, "UBIF")
    assert e3.train == e2.train and e3.finetune == {"UBIF": fd.low_shot["UBIF"]}
    e4a = protocol_splits(bench, "E4", 2, "UBIF", start="E1")
    assert e4a.source_domains == SIX and e4a.finetune == {"UBIF": fd.train["UBIF"]} and e4a.start == "E1"
    e4b = protocol_splits(bench, "E4", 2, "UBIF", start="E2")
    assert "UBIF" not in e4b.source_domains and e4b.finetune_val == {"UBIF": fd.val["UBIF"]}
    assert isinstance(e4b, ProtocolSplit)


def test_protocol_errors(bench):
    with pytest.raises(ValueError, match="'E9'"):
        protocol_splits(bench, "E9", 0, "ST")
    with pytest.raises(ValueError, match="'NWPU'"):
        protocol_splits(bench, "E2", 0, "NWPU")
    with pytest.raises(ValueError, match="fold 3"):
        protocol_splits(bench, "E1", 3)
    with pytest.raises(ValueError, match="target"):
        protocol_splits(bench, "E2", 0)


def test_domain_without_test_split():
    rows = _rows("A", "train", 20, 10) + _rows("A", "test", 3, 3) + _rows("B", "train", 20, 10)
    b = build_benchmark(rows, BenchmarkConfig(folds=1, volume_normal=10, volume_abnormal=5))
    assert b.test_domains() == ["A"] and b.folds[0].test["B"] == []
    assert set(protocol_splits(b, "E1", 0).test) == {"A"}
    assert set(protocol_splits(b, "single", 0, "B").test) == {"A"}
    assert protocol_splits(b, "E2", 0, "A").source_domains == ["B"]
    for p in ("E2", "E3", "E4"):
        with pytest.raises(CorpusError, match="'B'.*no test split"):
            protocol_splits(b, p, 0, "B")
