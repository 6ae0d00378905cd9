"""``omnivad reproduce``: the plan of each paper for a corpus with and without UBnormal (what runs, what is skipped
and why), ``--dry-run``, and tiny reproduce runs that write the report (wOCC-WS in-process for real; MDVAD with
its protocol runs faked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnivad import config
from omnivad.cli import main
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.errors import ConfigError
from omnivad.paper import reproduce as rp
from omnivad.protocols import runner

from tests.paper.test_variants import fake_run_protocol

SIX = ("UCFC", "XD", "LAD", "UBIF", "TAD", "ST")


def view(*domains: str, splits: tuple[str, ...] = ("train", "test")) -> rp.CorpusView:
    return rp.CorpusView("/c", {d: list(splits) for d in domains})


def _status(rows: list[rp.PlanRow]) -> dict[str, str | None]:
    return {r.entry.name: r.reason for r in rows}


def test_mdvad_plan_with_and_without_ubnormal():
    with_ubn = _status(rp.plan("mdvad", view(*SIX, "UBN")))
    assert list(with_ubn) == ["Table 4", "Table 5", "Table 6", "Table 7", "Table 8", "Tables 9, A5", "Table 10",
                              "Table 3", "Table A2"]
    assert all(reason is None for reason in with_ubn.values())
    without = _status(rp.plan("mdvad", view(*SIX)))
    assert without["Tables 9, A5"] == "no UBnormal domain 'UBN' in the corpus (ubnormal.domain; domains: " + ", ".join(SIX) + ")"
    assert without["Table 5"] is None
    only_ubn = _status(rp.plan("mdvad", rp.CorpusView("/c", {"UCFC": ["train", "test"], "UBN": ["train"]})))
    assert "needs 2 domains with train and test splits besides UBN, the corpus has 1 (UCFC)" in only_ubn["Table 5"]
    assert "lacks a train or test split" in only_ubn["Tables 9, A5"]


def test_other_papers_plans_and_errors():
    bn = _status(rp.plan("bn-wvad", view("campus", "traffic")))
    assert bn["Tables 1, 2, 6"].startswith("needs UCF (a domain named UCFC or UCF or ucf-crime)")
    assert bn["Tables 3-5, 7-9"].startswith("not automated")
    assert _status(rp.plan("bn-wvad", view("XD")))["Tables 1, 2, 6"] is None
    como = _status(rp.plan("como", view("UCFC", "SHT")))
    assert como["Table 1"] is None and "needs XD" in como["Table 4"]
    assert _status(rp.plan("uvad", view("ST", splits=("train",))))["Table 1"] == "no domain with train and test splits"
    with pytest.raises(ConfigError, match="--paper 'rtfm': expected one of mdvad, bn-wvad, como, uvad"):
        rp.plan("rtfm", view("ST"))


def test_an_analysis_is_one_registered_line(tmp_path):
    entry = rp.TableEntry("mdvad", "Table X", "anything", lambda v: None, lambda c, v: {"markdown": "| a |\n|---|\n| 1 |"})
    rp.register_table(entry)
    try:
        assert _status(rp.plan("mdvad", view("A", "B")))["Table X"] is None
    finally:
        rp.TABLES.remove(entry)
    with pytest.raises(ConfigError, match="paper 'x'"):
        rp.register_table(rp.TableEntry("x", "T", "", lambda v: None, lambda c, v: {}))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    uri = str(tmp_path_factory.mktemp("repro") / "corpus")
    synthesize(uri, SynthConfig(domain_names=["UCFC", "ST"], videos_per_domain=12, test_videos_per_domain=6, dim=8,
                                min_snippets=8, max_snippets=12, seed=1))
    return uri


def test_dry_run_prints_the_plan_and_writes_nothing(corpus, tmp_path, capsys):
    assert main(["reproduce", "--paper", "mdvad", "--corpus", corpus, "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"reproduce mdvad on {corpus} (domains UCFC, ST):" in out
    assert "  run   Table 5 " in out and "  skip  Tables 9, A5" in out and "no UBnormal domain 'UBN'" in out
    assert not (tmp_path / "o").exists()
    assert main(["reproduce", "--paper", "uvad", "--corpus", corpus, "--dry-run", "--set", "corpus.domains=[XX]"]) == 1
    assert "corpus.domains: 'XX' is not in" in capsys.readouterr().err
    assert main(["reproduce", "--paper", "mdvad", "--corpus", str(tmp_path / "none"), "--dry-run"]) == 1
    assert "corpus.uri: no corpus at" in capsys.readouterr().err


def test_mdvad_reproduce_assembles_every_supported_table(corpus, tmp_path, monkeypatch, capsys):
    calls: list = []
    monkeypatch.setattr(runner, "run_protocol", fake_run_protocol(calls))
    monkeypatch.setattr(runner, "run_comparison", lambda cfg, entries: {"rows": [
        {"entry": e, "protocol": cfg.protocol.name, "method": e, "per_domain": {"UCFC": {"auc": 0.5}}, "mean_auc": 0.5,
         "n": 1} for e in entries]})
    analysed: list[str] = []  # Table A2 analyses Table 4's (here faked) single run: its folder is what is asked for

    def fake_conflicts(run_dir: str, *a: object) -> dict:
        analysed.append(run_dir)
        m = {"UCFC": {"UCFC": 0.0, "ST": 0.25}, "ST": {"UCFC": 0.125, "ST": 0.0}}
        return {"domains": ["UCFC", "ST"], "matrix": m, "threshold": 0.5, "prediction": "frame", "n": 1}

    monkeypatch.setattr("omnivad.analysis.conflicts.conflicts", fake_conflicts)
    assert main(["reproduce", "--paper", "mdvad", "--corpus", corpus, "--out", str(tmp_path)]) == 0
    report = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("report: "))
    md = (report / "report.md").read_text()
    for title in ("### Table 5 — E1", "### Table 6 — E2", "### Table 7 — E3", "### Table 8 — E4", "### Table 10 —",
                  "### Scene discrepancy: EMD", "### Abnormal conflict: relative FPR/FNR"):
        assert title in md
    assert len(analysed) == 1 and analysed[0].startswith("/runs/single-")  # the single run's folder
    assert "## Tables 9, A5\n\nSkipped: no UBnormal domain 'UBN'" in md
    assert {c[0] for c in calls} == {"single", "E1", "E2", "E3", "E4"}
    saved = json.loads((report / "reproduce.json").read_text())
    assert [t["name"] for t in saved["tables"]][:2] == ["Table 4", "Table 5"] and saved["tables"][5]["skipped"]
    page = (report / "report" / "index.html").read_text()
    assert "<h1>omnivad reproduce mdvad</h1>" in page and "<th>Head</th>" in page


def test_tiny_uvad_reproduce_run_writes_the_report(corpus, tmp_path, capsys):
    """A real (in-process, few iterations) wOCC-WS run through reproduce."""
    sets = ["uvad.executor=local", "uvad.loops=1", "uvad.max_modules=1", "uvad.ws_iters=5", "uvad.ws_batch=2",
            "uvad.occ_hidden=8", "uvad.occ_batch=16", "uvad.ws=mil", "corpus.domains=[ST]"]
    args = ["reproduce", "--paper", "uvad", "--corpus", corpus, "--out", str(tmp_path)]
    assert main(args + sum((["--set", s] for s in sets), [])) == 0
    report = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("report: "))
    md = (report / "report.md").read_text()
    assert "### Table 1 — unsupervised setting (frame AUC %)" in md and "| Method | ST AUC % |" in md  # corpus.domains
    assert "## Table 4\n\nSkipped: not automated" in md
    assert (report / "report" / "index.html").is_file()
