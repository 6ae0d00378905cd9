"""MDVAD Eq. 8 (Table A2) on a fabricated `single` run, against a hand computation (tests/analysis/runs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from omnivad.analysis import AnalysisError
from omnivad.analysis.conflicts import conflicts, relative_conflict
from omnivad.cli import main
from tests.analysis.runs import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return make_run(tmp_path_factory.mktemp("conflicts"))


def test_eq8_by_hand(run_dir) -> None:
    r = conflicts(run_dir)
    # fold 0 (units of 16 frames): A→A FPR 1/5, FNR 1/3; A→B FPR 1/2, FNR 1; B→B FPR 1/2, FNR 0; B→A FPR 2/5 (the
    # 0.5 score counts as abnormal: >=), FNR 1/3.  AC_AB = ((1/2 − 1/2) + (1 − 0))/2 = 0.5; AC_BA = ((2/5 − 1/5) + 0)/2
    f0 = r["per_fold"]["0"]
    assert f0["rates"]["A"]["A"] == pytest.approx({"fpr": 0.2, "fnr": 1 / 3})
    assert f0["rates"]["B"]["A"] == pytest.approx({"fpr": 0.4, "fnr": 1 / 3})
    assert f0["ac"]["A"]["B"] == pytest.approx(0.5) and f0["ac"]["B"]["A"] == pytest.approx(0.1)
    # fold 1: A→B FPR 0 → AC_AB = ((0 − 1/2) + 1)/2 = 0.25; mean over folds 0.375, sample std 0.25/√2
    assert r["per_fold"]["1"]["ac"]["A"]["B"] == pytest.approx(0.25)
    assert r["matrix"]["A"]["B"] == pytest.approx(0.375) and r["matrix_std"]["A"]["B"] == pytest.approx(0.25 / 2 ** 0.5)
    assert r["matrix"]["B"]["A"] == pytest.approx(0.1) and r["matrix_std"]["B"]["A"] == pytest.approx(0.0)
    assert r["matrix"]["A"]["A"] == 0.0 and r["n"] == 2 and r["domains"] == ["A", "B"]
    assert r["fpr"]["A"]["B"] == pytest.approx(0.25)  # (1/2 + 0)/2


def test_each_models_own_threshold(run_dir) -> None:
    r = conflicts(run_dir, threshold="job")  # A's models 0.95, B's 0.35
    # A→A, A→B: FPR 0, FNR 1; B→B: FPR 1/2, FNR 0; B→A: FPR 2/5, FNR 1/3
    assert r["matrix"]["A"]["B"] == pytest.approx(((0 - 0.5) + (1 - 0)) / 2)
    assert r["matrix"]["B"]["A"] == pytest.approx(((0.4 - 0) + (1 / 3 - 1)) / 2)


def test_relative_conflict_needs_the_in_domain_model() -> None:
    rates = {"A": {"A": {"fpr": 0.1, "fnr": 0.2}, "C": {"fpr": 0.5, "fnr": 0.5}}}
    assert relative_conflict(rates) == {"A": {"A": 0.0}}  # no C→C model: AC_AC undefined, left out


def test_cli_writes_table(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "an"
    assert main(["analyze", "conflicts", run_dir, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| A | – | 0.375 |" in text and "| B | 0.100 | – |" in text
    assert json.loads((out / "conflicts.json").read_text())["matrix"]["A"]["B"] == pytest.approx(0.375)
    assert (out / "conflicts.md").read_text().startswith("### Abnormal conflict")


def test_not_a_single_run(tmp_path, capsys) -> None:
    rd = make_run(tmp_path, protocol="E1")
    with pytest.raises(AnalysisError, match=r"results.json: field 'protocol' is 'E1'.*'single'"):
        conflicts(rd)
    assert main(["analyze", "conflicts", rd]) == 1
    assert "needs a 'single' protocol run" in capsys.readouterr().err


def test_missing_files_are_named(run_dir, tmp_path) -> None:
    with pytest.raises(AnalysisError, match="results.json: no such file"):
        conflicts(str(tmp_path))
    with pytest.raises(AnalysisError, match="--threshold"):
        conflicts(run_dir, threshold="median")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "results.json").write_text(Path(run_dir, "results.json").read_text())
    (bare / "jobs.json").write_text(Path(run_dir, "jobs.json").read_text())
    with pytest.raises(AnalysisError, match="scores.csv: no such file"):
        conflicts(str(bare))
    jobs = json.loads(Path(run_dir, "jobs.json").read_text())
    for rec in jobs["jobs"].values():
        rec.pop("threshold")
    os.remove(bare / "jobs.json")
    (bare / "jobs.json").write_text(json.dumps(jobs))
    for name in ("scores.csv",):
        (bare / name).write_text(Path(run_dir, name).read_text())
    os.symlink(Path(run_dir, "scores"), bare / "scores")
    with pytest.raises(AnalysisError, match="has no field 'threshold.value'"):
        conflicts(str(bare), threshold="job")
