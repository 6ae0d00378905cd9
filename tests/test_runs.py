"""``omnivad runs ls|compare`` and ``omnivad.runs.load``: one row per results.json under an output folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from omnivad import runs
from omnivad.cli import main


def _result(out: Path, name: str, chash: str, lr: float, aucs: dict[str, float], std: float | None) -> Path:
    d = out / name
    d.mkdir(parents=True)
    payload = {"protocol": name.split("-")[0], "method": "mil", "tag": "mil+ac", "selection": "best-val",
               "config_hash": chash, "per_domain": {k: {"auc": v, "ap": v / 2} for k, v in aucs.items()},
               "mean_auc": sum(aucs.values()) / len(aucs), "mean_auc_std": std, "n": 3 if std else 1,
               "config": {"train": {"steps": 600, "lr": lr}}}
    (d / "results.json").write_text(json.dumps(payload))
    return d


@pytest.fixture
def out(tmp_path: Path) -> Path:
    _result(tmp_path, "E1-mil+ac-20260101-000000", "aaaa111111", 1e-3, {"campus": 0.8, "street": 0.9}, 0.01)
    _result(tmp_path, "E2-mil+ac-20260102-000000", "bbbb222222", 5e-5, {"campus": 0.6}, None)
    (tmp_path / "runs" / "aaaa111111" / "mil" / "fold0" / "E1").mkdir(parents=True)
    (tmp_path / "runs" / "aaaa111111" / "mil" / "fold0" / "E1" / "history.json").write_text("[]")
    (tmp_path / "uvad-x").mkdir()
    (tmp_path / "uvad-x" / "results.json").write_text(json.dumps({"run": "x"}))  # not a protocol run: skipped
    return tmp_path


def test_load_rows(out: Path) -> None:
    rows = runs.load(out)
    assert [r["protocol"] for r in rows] == ["E1", "E2"]
    e1 = rows[0]
    assert e1["config_hash"] == "aaaa111111" and e1["steps"] == 600 and e1["lr"] == 1e-3 and e1["selection"] == "best-val"
    assert e1["auc:campus"] == 0.8 and e1["ap:street"] == 0.45 and e1["mean_auc_std"] == 0.01
    assert rows[1].get("auc:street") is None
    frame = runs.load(out, as_frame=True)
    assert list(frame["protocol"]) == ["E1", "E2"] and "auc:street" in frame.columns


def test_ls_markdown_and_csv(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "ls", str(out)]) == 0
    md = capsys.readouterr().out
    assert md.splitlines()[0].startswith("| run | protocol | tag | config_hash | date |")
    assert "85.00 ± 1.00" in md and "| 60.00 |" in md
    assert main(["runs", "ls", str(out), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run,protocol,tag,config_hash,date,steps,lr,selection,mean_auc,mean_auc_std,n,")
    assert len(lines) == 3 and ",bbbb222222," in lines[2]


def test_compare_by_dir_and_hash(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    e1 = out / "E1-mil+ac-20260101-000000"
    assert main(["runs", "compare", str(e1), "bbbb", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| field | E1-mil+ac-20260101-000000 | E2-mil+ac-20260102-000000 |" in text
    assert "| lr | 0.001 | 5e-05 |" in text and "| auc:campus | 80.00 | 60.00 |" in text
    assert main(["runs", "compare", "zzzz", "--out", str(out)]) == 1
    assert "zzzz: neither a run directory nor a config hash" in capsys.readouterr().err


def test_errors_name_the_file(out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "ls", str(tmp_path / "missing")]) == 1
    assert "missing: not a directory" in capsys.readouterr().err
    bad = out / "E1-mil+ac-20260101-000000" / "results.json"
    bad.write_text("{broken")
    assert main(["runs", "compare", str(bad.parent)]) == 1
    assert f"{bad}: cannot read results" in capsys.readouterr().err
    assert os.path.exists(bad)
