"""``ubnormal-open`` (MDVAD §6.3, Tables 9/A5): the re-split of UBnormal's splits, its counts on a UBnormal-like
corpus (the real lists' volumes) and on the real community lists, the jobs it plans and its aggregation (no Ray)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omnivad import config
from omnivad.corpus.importers import read_list
from omnivad.errors import ConfigError, CorpusError
from omnivad.protocols import get_protocol
from omnivad.protocols.common import Job
from omnivad.protocols.ubnormal_open import open_set_benchmark, resplit_rows

REPO = Path(__file__).resolve().parents[2]
COMMUNITY = Path(os.environ.get("OMNIVAD_COMMUNITY_DATA", REPO / ".." / "shared" / "data" / "community"))
UB_LISTS = {"train": "ubnormal-i3d-train-10crop.list", "validation": "ubnormal-i3d-validation-10crop.list",
            "test": "ubnormal-i3d-test-10crop.list"}
#: The real lists' volumes (datasets/ubnormal.md): (normal, abnormal) per split.
UB_COUNTS = {"train": (186, 82), "validation": (26, 38), "test": (53, 158)}


def _rows(domain: str, split: str, normal: int, abnormal: int, cats: tuple[str, ...] = ("",)) -> list[dict]:
    return ([dict(video_id=f"{domain}_{split}_N{i}", domain=domain, split=split, label=0) for i in range(normal)]
            + [dict(video_id=f"{domain}_{split}_A{i}", domain=domain, split=split, label=1,
                    category=cats[i % len(cats)]) for i in range(abnormal)])


def ubnormal_like(ubn: str = "UBN") -> list[dict]:
    """Two MDVAD-like sources with 210 N / 176 A pools and a UBnormal domain with the real lists' split volumes
    (training types T*, test types X*: disjoint, as in UBnormal)."""
    rows = [r for d in ("A", "B") for r in _rows(d, "train", 230, 190) + _rows(d, "test", 5, 5)]
    rows += _rows(ubn, "train", *UB_COUNTS["train"], cats=("Tfalling", "Tdancing"))
    rows += _rows(ubn, "validation", *UB_COUNTS["validation"], cats=("Vlimping",))
    rows += _rows(ubn, "test", *UB_COUNTS["test"], cats=("Xrunning", "Xfire"))
    return rows


def _cfg(*extra: str) -> config.Config:
    return config.load(overrides=["benchmark.folds=2", "benchmark.volume_normal=210", "benchmark.volume_abnormal=176",
                                  "benchmark.val_fraction=0.1", "protocol.name=ubnormal-open", *extra])


def _counts(rows: list[dict], split: str) -> tuple[int, int]:
    sel = [r for r in rows if r["split"] == split]
    return sum(r["label"] == 0 for r in sel), sum(r["label"] == 1 for r in sel)


def test_disjoint_resplit_pools_train_and_validation_and_keeps_the_test_split():
    rows, info = resplit_rows(ubnormal_like(), "UBN", "disjoint", 176)
    assert _counts(rows, "train") == (212, 120) and _counts(rows, "test") == (53, 158)
    assert info["pool"] == {"normal": 212, "abnormal": 120} and info["test"] == {"normal": 53, "abnormal": 158}
    assert info["seen_test_videos"] == []
    train_types = {r.get("category") for r in rows if r["split"] == "train" and r["label"] == 1}
    test_types = {r.get("category") for r in rows if r["split"] == "test" and r["label"] == 1}
    assert not train_types & test_types  # open set: no test anomaly type in training
    assert {r["stored_split"] for r in rows if r["split"] == "train"} == {"train", "validation"}


def test_fill_resplit_reaches_the_papers_counts_from_the_test_split():
    rows, info = resplit_rows(ubnormal_like(), "UBN", "fill", 176)
    assert _counts(rows, "train") == (212, 176) and _counts(rows, "test") == (53, 102)
    moved = info["seen_test_videos"]
    assert len(moved) == 56 and all(v.startswith("UBN_test_A") for v in moved)
    assert {r["stored_split"] for r in rows if r["video_id"] in moved} == {"test"}
    assert resplit_rows(ubnormal_like(), "UBN", "fill", 176)[1] == info  # seeded: the same draw
    assert resplit_rows(ubnormal_like(), "UBN", "fill", 176, seed=1)[1]["seen_test_videos"] != moved


def test_open_set_benchmark_counts_per_fold():
    bench, info = open_set_benchmark(_cfg(), ubnormal_like(), ["A", "B", "UBN"])
    assert bench.domains == ["A", "B", "UBN"] and (bench.volume_normal, bench.volume_abnormal) == (210, 176)
    assert info["volumes"] == {"normal": 210, "abnormal": 120}
    for fd in bench.folds:
        lab = lambda ids: (sum(bench.info("UBN", v).label == 0 for v in ids), sum(bench.info("UBN", v).label == 1 for v in ids))  # noqa: E731
        assert tuple(a + b for a, b in zip(lab(fd.train["UBN"]), lab(fd.val["UBN"]))) == (210, 120)
        assert lab(fd.test["UBN"]) == (53, 158)
        assert len(fd.train["A"]) + len(fd.val["A"]) == 386
        # a validation-split video is loaded from where it is stored
        where = bench.locations({"UBN": fd.train["UBN"]})["UBN"]
        assert set(where.values()) == {("UBN", "validation")}
        assert all(v.startswith("UBN_validation_") for v in where)
    filled, _ = open_set_benchmark(_cfg("ubnormal.resplit=fill"), ubnormal_like(), ["A", "B", "UBN"])
    fd = filled.folds[0]
    assert len(fd.test["UBN"]) == 155 and len(fd.train["UBN"]) + len(fd.val["UBN"]) == 386
    assert ("UBN", "test") in set(filled.locations({"UBN": fd.train["UBN"] + fd.val["UBN"]})["UBN"].values())


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match="ubnormal.domain: 'UBX' is not a domain"):
        open_set_benchmark(_cfg("ubnormal.domain=UBX"), ubnormal_like(), ["A", "B", "UBN"])
    with pytest.raises(ConfigError, match="ubnormal.resplit"):
        resplit_rows(ubnormal_like(), "UBN", "both", 176)
    with pytest.raises(CorpusError, match="no videos of domain 'UBX'"):
        resplit_rows(ubnormal_like(), "UBX", "disjoint", 176)
    with pytest.raises(Exception, match="ubnormal.resplit"):
        _cfg("ubnormal.resplit=neither")


@pytest.mark.skipif(not (COMMUNITY / "ubnormal").is_dir(),
                    reason=f"community UBnormal lists not found at {COMMUNITY / 'ubnormal'} (set OMNIVAD_COMMUNITY_DATA)")
def test_real_community_lists_resplit_counts():
    rows = [r for d in ("A", "B") for r in _rows(d, "train", 230, 190) + _rows(d, "test", 5, 5)]
    for split, name in UB_LISTS.items():
        for ln in read_list(COMMUNITY / "ubnormal" / name):
            stem = os.path.basename(ln.raw)[: -len(".npy")]
            rows.append(dict(video_id=stem, domain="UBN", split=split, label=int(stem.startswith("abnormal_"))))
    for split, counts in UB_COUNTS.items():
        assert _counts([r for r in rows if r["domain"] == "UBN"], split) == counts
    _, info = resplit_rows(rows, "UBN", "disjoint", 176)
    assert info["pool"] == {"normal": 212, "abnormal": 120} and info["test"] == {"normal": 53, "abnormal": 158}
    _, info = resplit_rows(rows, "UBN", "fill", 176)
    assert info["pool"] == {"normal": 212, "abnormal": 176} and info["test"] == {"normal": 53, "abnormal": 102}
    bench, info = open_set_benchmark(_cfg(), rows, ["A", "B", "UBN"])
    assert info["volumes"] == {"normal": 210, "abnormal": 120}
    assert len(bench.folds[0].test["UBN"]) == 211


def test_plan_and_aggregate(tmp_path):
    class FakeCorpus:
        uri = str(tmp_path)

    cfg = _cfg("protocol.folds=2", "model.method=mil")
    bench, _ = open_set_benchmark(cfg, ubnormal_like(), ["A", "B", "UBN"])
    p = get_protocol("UBNORMAL-open")
    jobs = p.plan(cfg, FakeCorpus, bench, ["A", "B", "UBN"])
    assert [j.key for j in jobs] == [("0", "open"), ("0", "reference"), ("1", "open"), ("1", "reference")]
    assert jobs[0].stages[0].head_domains == ["A", "B", "UBN"] and jobs[0].test_domains == ["A", "B", "UBN"]
    assert list(jobs[1].stages[0].train) == ["UBN"] and jobs[1].test_domains == ["UBN"]
    assert len(p.plan(config.load(overrides=["benchmark.folds=2", "ubnormal.reference=false"]), FakeCorpus, bench,
                      ["A", "B", "UBN"])) == 1
    aucs = {("0", "open"): {"A": 0.8, "B": 0.6, "UBN": 0.7}, ("1", "open"): {"A": 0.9, "B": 0.7, "UBN": 0.5},
            ("0", "reference"): {"UBN": 0.75}, ("1", "reference"): {"UBN": 0.65}}
    for j in jobs:
        j.result = {"per_domain": {d: {"auc": a, "ap": a} for d, a in aucs[j.key].items()}, "checkpoint": "c",
                    "selected": "final"}
    out = p.aggregate(cfg, jobs, ["A", "B", "UBN"])
    assert out["per_domain"]["UBN"]["auc"] == pytest.approx(0.6) and out["n"] == 2
    assert out["others_mean_auc"] == pytest.approx(0.75) and out["others_mean_auc_std"] == pytest.approx(0.0707107)
    assert out["reference"]["UBN"]["auc"] == pytest.approx(0.7) and out["open_set"] == {"domain": "UBN", "resplit": "disjoint"}
    assert isinstance(jobs[0], Job)


def ubnormal_corpus(uri: str) -> str:
    """A synthetic corpus with two sources and a UBnormal-like domain whose train split is partly a validation
    split (as UBnormal's is stored)."""
    from omnivad.corpus.format import write_videos
    from omnivad.corpus.synth import SynthConfig, generate

    vids = generate(SynthConfig(domain_names=["A", "B", "UBN"], videos_per_domain=16, test_videos_per_domain=10, dim=8,
                                min_snippets=8, max_snippets=12, seed=4))
    ubn_train = sorted((v for v in vids if v.domain == "UBN" and v.split == "train"), key=lambda v: v.video_id)
    for i, v in enumerate(ubn_train):
        if i % 4 == 0:
            v.split = "validation"
    dropped = {id(v) for v in [v for v in ubn_train if v.label == 1][::2]}  # UBnormal's abnormal shortfall: 4 of 8 left
    vids = [v for v in vids if id(v) not in dropped]
    write_videos(uri, vids, feature_dim=8)
    return uri


def test_open_set_benchmark_of_a_stored_corpus(tmp_path):
    from omnivad.corpus.format import Corpus

    corpus = Corpus.open(ubnormal_corpus(str(tmp_path / "c")))
    assert "validation" in corpus.manifest.domains["UBN"].splits
    cfg = config.load(overrides=["benchmark.folds=1", "protocol.name=ubnormal-open", "benchmark.val_fraction=0"])
    bench = get_protocol("ubnormal-open").benchmark(cfg, corpus, ["A", "B", "UBN"])
    fd = bench.folds[0]
    stored = {r["video_id"]: r["split"] for r in corpus.index() if r["domain"] == "UBN"}
    assert {stored[v] for v in fd.train["UBN"]} == {"train", "validation"}
    assert {stored[v] for v in fd.test["UBN"]} == {"test"} and len(fd.test["UBN"]) == 10
    assert (len(fd.train["UBN"]), len(fd.train["A"])) == (12, 16)  # 8 N + the 4 A of its pool; the others 8 + 8
    assert ("UBN", "validation") in set(bench.locations({"UBN": fd.train["UBN"]})["UBN"].values())
    jobs = [Job(("0", "open"), [], ["A", "B", "UBN"], {"per_domain": {d: {"auc": 0.7} for d in ("A", "B", "UBN")},
                                                       "checkpoint": "c", "selected": "final"})]
    fill = config.load(overrides=["benchmark.folds=1", "ubnormal.resplit=fill"])
    info = get_protocol("ubnormal-open").aggregate(fill, jobs, ["A", "B", "UBN"], corpus=corpus)["open_set"]
    assert info["resplit"] == info["mode"] == "fill" and info["pool"]["abnormal"] == info["volumes"]["abnormal"] == 8
    assert len(info["seen_test_videos"]) == 4 and {stored[v] for v in info["seen_test_videos"]} == {"test"}
