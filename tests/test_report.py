"""What results.json and the tables say: AC only where a method has it, the selection rule, mean ± sample std
with n (no std for one fold), every metric, AP as the headline of an XD-style domain. No Ray is started."""

from __future__ import annotations

import math

import pytest

from omnivad import config
from omnivad.corpus.format import Corpus, DomainEntry, Manifest
from omnivad.engine.spec import RunSpec
from omnivad.protocols.runner import Job, aggregate, comparison_rows
from omnivad.report.tables import comparison_table, protocol_table


def _job(fold: int, a: float, b: float) -> Job:
    spec = RunSpec(name="x", corpus_uri="c", train={}, head_domains=["A", "B"], steps=1)
    per_domain = {"A": {"auc": a, "ap": a - 0.1, "pr_auc": a - 0.2, "auc_abnormal": a - 0.3},
                  "B": {"auc": b, "ap": b - 0.1, "pr_auc": b - 0.2, "auc_abnormal": None}}
    return Job((str(fold),), [spec], ["A", "B"], result={"per_domain": per_domain, "checkpoint": f"ck{fold}",
                                                           "selected": "best-val@2", "reused_runs": []})


def _cfg(*extra: str) -> config.Config:
    return config.load(overrides=["protocol.folds=3", *extra])


def test_three_folds_mean_sample_std_and_n() -> None:
    r = aggregate(_cfg(), [_job(0, 0.8, 0.6), _job(1, 0.9, 0.6), _job(2, 1.0, 0.6)], ["A", "B"])
    a = r["per_domain"]["A"]
    assert a["n"] == 3 and a["auc"] == pytest.approx(0.9) and a["auc_std"] == pytest.approx(0.1)  # ddof=1
    assert a["ap"] == pytest.approx(0.8) and a["pr_auc"] == pytest.approx(0.7) and a["auc_abnormal"] == pytest.approx(0.6)
    assert a["pr_auc_std"] == pytest.approx(0.1)
    assert r["per_domain"]["B"]["auc_abnormal"] is None  # not computable in any fold: not invented
    # fold means 0.7, 0.75, 0.8: sample std 0.05 (population std would be 0.0408)
    assert r["mean_auc"] == pytest.approx(0.75) and r["mean_auc_std"] == pytest.approx(0.05) and r["n"] == 3
    assert r["ac"] is True and r["selection"] == "best-val" and "validation" in r["selection_rule"]
    assert r["best_test"] is False and r["reused"] is False
    md = protocol_table([r])
    assert "| NullAng-MIL | ✓ | 90.00 ± 10.00 | 60.00 ± 0.00 | 75.00 ± 5.00 | 3 |" in md
    assert "mean ± sample std (ddof=1) over n=3 folds" in md and "model selection: best-val = best validation AUC" in md


def test_one_fold_reports_no_std() -> None:
    r = aggregate(_cfg("protocol.folds=1"), [_job(0, 0.8, 0.6)], ["A", "B"])
    assert r["per_domain"]["A"]["auc_std"] is None and r["mean_auc_std"] is None and r["n"] == 1
    md = protocol_table([r])
    assert "| NullAng-MIL | ✓ | 80.00 | 60.00 | 70.00 | 1 |" in md and "n=1 fold (no std)" in md


@pytest.mark.parametrize("method", ["bn-wvad", "mmil", "como"])
def test_a_method_without_ac_has_no_ac_field_and_a_dash(method: str) -> None:
    r = aggregate(_cfg(f"model.method={method}", "loss.ac=true", "protocol.folds=1"), [_job(0, 0.8, 0.6)], ["A", "B"])
    assert "ac" not in r
    line = [ln for ln in protocol_table([r]).splitlines() if ln.startswith("| ") and "80.00" in ln][0]
    assert line.split(" | ")[1] == "—"
    row = comparison_rows([(method, r)])[0]
    assert "ac" not in row and comparison_table([row]).splitlines()[4].split(" | ")[2] == "—"


def test_ac_off_on_a_method_that_has_it() -> None:
    r = aggregate(_cfg("loss.ac=false", "protocol.folds=1"), [_job(0, 0.8, 0.6)], ["A", "B"])
    assert r["ac"] is False and "| NullAng-MIL | ✗ |" in protocol_table([r])


def test_best_test_is_flagged_in_every_output() -> None:
    r = aggregate(_cfg("train.selection=best-test", "protocol.folds=1"), [_job(0, 0.8, 0.6)], ["A", "B"])
    assert r["best_test"] is True and "TEST" in r["selection_rule"]
    assert "NullAng-MIL (best-test)" in protocol_table([r]) and "[BEST-TEST" in protocol_table([r])
    other = aggregate(_cfg("protocol.folds=1", "model.method=mmil"), [_job(0, 0.7, 0.6)], ["A", "B"])
    rows = comparison_rows([("nullang-mil", r), ("mmil", other)])
    assert [x["best_test"] for x in rows] == [True, False]
    md = comparison_table(rows).splitlines()
    assert md[4].endswith("| **best-test (optimistic)** |") and md[5].endswith("| best-val |")
    assert "[BEST-TEST" in md[-2]


def test_an_xd_style_domain_shows_ap_as_headline() -> None:
    r = aggregate(_cfg("metrics.domain_metric={B: ap}", "protocol.folds=1"), [_job(0, 0.8, 0.6)], ["A", "B"])
    assert r["per_domain"]["B"]["headline"] == "ap" and r["per_domain"]["A"]["headline"] == "auc"
    md = protocol_table([r])
    assert "| Head | AC | A | B (AP) | Avg. AUC | n |" in md
    assert "| NullAng-MIL | ✓ | 80.00 | 50.00 | 70.00 | 1 |" in md  # B: its AP 0.5, the average stays AUC
    assert "AP (%, sklearn average precision) for B" in md
    assert math.isclose(r["per_domain"]["B"]["ap"], 0.5)


def test_the_corpus_manifest_declares_a_domain_xd_style(tmp_path) -> None:
    corpus = Corpus(str(tmp_path), Manifest(feature_dim=4, domains={"A": DomainEntry(), "B": DomainEntry(metric="ap")}))
    r = aggregate(_cfg("protocol.folds=1"), [_job(0, 0.8, 0.6)], ["A", "B"], corpus=corpus)
    assert [r["per_domain"][d]["headline"] for d in "AB"] == ["auc", "ap"]
    over = aggregate(_cfg("protocol.folds=1", "metrics.domain_metric={B: auc}"), [_job(0, 0.8, 0.6)], ["A", "B"], corpus=corpus)
    assert over["per_domain"]["B"]["headline"] == "auc"  # the config overrides the manifest
