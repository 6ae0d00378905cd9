"""``omnivad run --variants paper`` and ``--methods ... --protocols``: which runs are made (method, AC, protocol,
reference) and what is written, with the protocol runs faked (their results fabricated; no training, no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnivad import config
from omnivad.cli import main
from omnivad.errors import ConfigError
from omnivad.paper import variants
from omnivad.protocols import method_glue, runner

DOMAINS = ("UCFC", "ST")


def fake_run_protocol(calls: list):
    def run(cfg: config.Config) -> dict:
        fields = method_glue.run_fields(cfg)
        calls.append((cfg.protocol.name, fields["tag"], cfg.ubnormal.reference, cfg.protocol.e4_start))
        per = {d: {"auc": 0.8, "auc_std": 0.01, "headline": "auc"} for d in (*DOMAINS, *(["UBN"] if cfg.protocol.name == "ubnormal-open" else []))}
        r = {"protocol": cfg.protocol.name, **fields, "per_domain": per, "mean_auc": 0.8, "mean_auc_std": 0.01,
             "n": 2, "folds": 2, "selection": "final", "others_mean_auc": 0.8, "others_mean_auc_std": 0.01,
             "open_set": {"domain": "UBN", "resplit": cfg.ubnormal.resplit},
             "reference": {"UBN": {"auc": 0.75, "auc_std": 0.0, "headline": "auc"}} if cfg.ubnormal.reference else {},
             "results_uri": f"/runs/{cfg.protocol.name}-{fields['tag']}", "table": "(md)"}
        if cfg.protocol.name == "single":
            r |= {"matrix": {s: {t: 0.7 for t in DOMAINS} for s in DOMAINS}, "out_avg": {t: 0.6 for t in DOMAINS},
                  "out_avg_mean": 0.6, "in_domain_mean": 0.7}
        if cfg.protocol.name == "E4":
            r["starts"] = [dict(r, start=s) for s in ("E1", "E2")]
        return r
    return run


@pytest.fixture
def calls(monkeypatch) -> list:
    out: list = []
    monkeypatch.setattr(runner, "run_protocol", fake_run_protocol(out))
    return out


def _cfg(tmp_path: Path, *extra: str) -> config.Config:
    return config.load(overrides=[f"storage.out={tmp_path}", *extra])


@pytest.mark.parametrize("protocol,table", [("E1", "table5"), ("E2", "table6"), ("E3", "table7")])
def test_six_variants_then_the_reference(calls, tmp_path, protocol, table):
    out = variants.run_paper(_cfg(tmp_path, f"protocol.name={protocol}"))
    runs = [(p, tag) for p, tag, _, _ in calls]
    six = [(protocol, t) for t in ("mil", "mil+ac", "null-mil", "null-mil+ac", "nullang-mil", "nullang-mil+ac")]
    assert runs == six + ([("single", "mil")] if protocol != "E3" else [])
    d = Path(out["results_uri"])
    assert d.name.startswith(f"{protocol}-paper-") and sorted(p.name for p in d.iterdir()) == sorted(
        [f"{table}.md", f"{table}.csv", "results.md", "paper.json"])
    md = (d / f"{table}.md").read_text()
    assert md == out["tables"][table].markdown() and md in (d / "results.md").read_text()
    assert md.splitlines()[2] == "| Head | AC | UCFC | ST | Avg. |"
    saved = json.loads((d / "paper.json").read_text())
    assert [r["entry"] for r in saved["results"]] == list(variants.PAPER_VARIANTS) and saved["tables"] == [table]
    assert (saved["reference"] is None) == (protocol == "E3")


def test_e4_runs_the_papers_model_from_both_starts(calls, tmp_path):
    out = variants.run_paper(_cfg(tmp_path, "protocol.name=E4", "protocol.e4_start=E1"))
    assert [(p, t, s) for p, t, _, s in calls] == [("E4", "nullang-mil+ac", "both"), ("single", "mil", "E1")]
    assert [r[0] for r in out["tables"]["table8"].rows] == ["Single (in-domain)", "E1 model → fine-tuned",
                                                           "E2 model → fine-tuned"]


def test_ubnormal_open_trains_the_reference_once(calls, tmp_path):
    out = variants.run_paper(_cfg(tmp_path, "protocol.name=ubnormal-open"))
    assert [(t, ref) for _, t, ref, _ in calls] == [("mil", True), ("mil+ac", False), ("null-mil", False),
                                                    ("null-mil+ac", False), ("nullang-mil", False),
                                                    ("nullang-mil+ac", False)]
    assert set(out["tables"]) == {"table9", "tableA5"} and out["tables"]["table9"].rows[0][0] == "UBN only"


def test_no_paper_table_for_single(calls, tmp_path):
    with pytest.raises(ConfigError, match="protocol 'single' has no paper table"):
        variants.run_paper(_cfg(tmp_path, "protocol.name=single"))
    assert calls == []


def test_cli_variants_and_table10_across_protocols(calls, tmp_path, monkeypatch, capsys):
    def fake_comparison(cfg, entries):
        return {"rows": [{"entry": e, "protocol": cfg.protocol.name, "method": e, "per_domain": {
            "UCFC": {"auc": 0.5, "headline": "auc"}}, "mean_auc": 0.5, "n": 1} for e in entries]}

    monkeypatch.setattr(runner, "run_comparison", fake_comparison)
    assert main(["run", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"), "--protocol", "E2", "--variants",
                 "paper"]) == 0
    assert "### Table 6" in capsys.readouterr().out and len(calls) == 7
    assert main(["run", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"), "--methods", "mmil,como",
                 "--protocols", "E1,e3"]) == 0
    text = capsys.readouterr().out
    assert "| E1 | MMIL | 50.00 | 50.00 |" in text and "| E3 | CoMo | 50.00 | 50.00 |" in text
    assert main(["run", "--corpus", str(tmp_path), "--protocols", "E1"]) == 1
    assert "--protocols needs --methods" in capsys.readouterr().err
    assert main(["run", "--corpus", str(tmp_path), "--variants", "paper", "--method", "mil"]) == 1
    assert "--variants paper picks the methods itself" in capsys.readouterr().err
