"""Per-category AUC/AP (the category's videos + every normal video of the domain) against hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omnivad.analysis import AnalysisError
from omnivad.analysis.categories import categories
from omnivad.cli import main
from omnivad.corpus.format import Corpus
from omnivad.errors import MetricError
from omnivad.metrics import category_metrics, evaluate_corpus
from omnivad.report.tables import category_table
from tests.analysis.runs import SCORES, TESTS, make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return make_run(tmp_path_factory.mktemp("categories"))


def _videos(domain: str) -> list[tuple[str, np.ndarray, int, list[str]]]:
    out = []
    for vid, (label, cats) in TESTS[domain].items():
        out.append((vid, np.array([0] * 16 + [1] * 16 if label else [0] * 16), label, cats))
    return out


def _scores(fold: str, source: str, domain: str) -> dict[str, np.ndarray]:
    return {v: np.asarray(s) for v, s in SCORES[(fold, source)][domain].items()}


def test_category_metrics_by_hand() -> None:
    got = category_metrics(_videos("A"), _scores("0", "A", "A"), "A")
    # Fighting: a_f1, a_f2 (multi-label) + normals a_n1, a_n2. Negative units 0.1 0.6 0.2 0.3, positive 0.7 0.5:
    # AUC = (4 + 3)/8; AP: 0.7 (+, P=1), 0.6 (−), 0.5 (+, P=2/3) → (1 + 2/3)/2
    assert got["Fighting"] == pytest.approx({"auc": 7 / 8, "ap": 5 / 6, "n_videos": 4, "n_category_videos": 2})
    # Riot: a_f2, a_r1 + normals. Negatives 0.1 0.6 0.3 0.4, positives 0.5 0.35: AUC (3 + 2)/8; AP (1/2 + 2/4)/2
    assert got["Riot"] == pytest.approx({"auc": 5 / 8, "ap": 0.5, "n_videos": 4, "n_category_videos": 2})
    assert list(got) == ["Fighting", "Riot"]
    alone = category_metrics(_videos("A"), _scores("0", "A", "A"), "A", negatives="none")
    assert alone["Fighting"]["auc"] == 1.0 and alone["Riot"]["auc"] == pytest.approx(3 / 4)  # 0.5>0.3,0.4; 0.35>0.3
    assert alone["Riot"]["ap"] == pytest.approx((1 + 2 / 3) / 2) and alone["Riot"]["n_videos"] == 2
    assert category_metrics(_videos("B"), _scores("0", "B", "B"), "B") == {}  # uncategorised abnormal video
    with pytest.raises(MetricError, match="negatives"):
        category_metrics(_videos("A"), _scores("0", "A", "A"), "A", negatives="all")
    with pytest.raises(MetricError, match="video 'a_n1'"):
        category_metrics(_videos("A"), {}, "A")


def test_single_class_pool_is_none() -> None:
    vids = [("x", np.ones(16, int), 1, ["Fire"])]  # every frame abnormal, no normal video
    assert category_metrics(vids, {"x": np.array([0.3])}, "D") == {
        "Fire": {"auc": None, "ap": None, "n_videos": 1, "n_category_videos": 1}}


def test_evaluate_corpus_reports_per_category(run_dir) -> None:
    corpus = Corpus.open(json.loads(Path(run_dir, "results.json").read_text())["corpus"]["uri"])
    flat = {f"{d}/{v}": np.asarray(s) for d, vids in SCORES[("0", "A")].items() for v, s in vids.items()}
    r = evaluate_corpus(corpus, flat)
    assert set(r["per_category"]) == {"A"}  # B's abnormal video has no category
    assert r["per_category"]["A"]["Fighting"]["auc"] == pytest.approx(7 / 8)


def test_run_categories_over_folds(run_dir, tmp_path, capsys) -> None:
    r = categories(run_dir)
    # single: only the in-domain (A→A) jobs count for A. Fold 1 raises a_n2 to 0.8: Fighting AUC (3 + 3)/8
    fighting = r["per_category"]["A"]["Fighting"]
    assert fighting["n"] == 2 and fighting["auc"] == pytest.approx((7 / 8 + 6 / 8) / 2)
    assert fighting["auc_std"] == pytest.approx(np.std([7 / 8, 6 / 8], ddof=1))
    assert r["per_category"]["A"]["Riot"]["auc"] == pytest.approx(5 / 8) and r["per_category"]["A"]["Riot"]["auc_std"] == 0
    assert set(r["per_category"]) == {"A"} and r["matches_results"] is None
    # results.json holding the same numbers (what a run writes) → matches; a changed one → not
    res = json.loads(Path(run_dir, "results.json").read_text())
    Path(run_dir, "results.json").write_text(json.dumps({**res, "per_category": r["per_category"]}))
    assert categories(run_dir)["matches_results"] is True
    bad = json.loads(json.dumps(r["per_category"]))
    bad["A"]["Riot"]["auc"] = 0.5
    Path(run_dir, "results.json").write_text(json.dumps({**res, "per_category": bad}))
    assert categories(run_dir)["matches_results"] is False
    Path(run_dir, "results.json").write_text(json.dumps(res))
    md = category_table(r["per_category"])
    assert "| A | Fighting | 81.25 ± 8.84 | " in md and "| 2 / 4 | 2 |" in md
    out = tmp_path / "an"
    assert main(["analyze", "categories", run_dir, "--out", str(out), "--negatives", "none"]) == 0
    assert "| A | Riot | 75.00 ± 0.00 |" in capsys.readouterr().out
    assert json.loads((out / "categories.json").read_text())["negatives"] == "none"


def test_unknown_protocol_is_named(run_dir) -> None:
    res = json.loads(Path(run_dir, "results.json").read_text())
    with pytest.raises(AnalysisError, match="protocol"):
        Path(run_dir, "results.json").write_text(json.dumps({**res, "protocol": "E9"}))
        try:
            categories(run_dir)
        finally:
            Path(run_dir, "results.json").write_text(json.dumps(res))
