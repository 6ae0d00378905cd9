"""The ``omnivad`` command line, in process (``omnivad.cli.main``) plus one subprocess smoke test."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from omnivad.cli import main
from omnivad.corpus.format import Corpus

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ["campus", "traffic"]


# --------------------------------------------------------------------------------------------------
# helpers


def _run_quiet(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """A small synthetic corpus made through ``omnivad corpus synth``: (uri, exit code, stdout)."""
    uri = tmp_path_factory.mktemp("cli") / "corpus"
    rc, out, _ = _run_quiet(["corpus", "synth", "--out", str(uri), "--domains", "2", "--videos", "8",
                             "--dim", "8", "--seed", "3"])
    return uri, rc, out


def _table_rows(text: str) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """``{(domain, split): (videos, normal, abnormal, snippets)}`` from ``describe`` output."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s+(\S+)\s+(train|test|validation)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s", line)
        if m:
            rows[(m.group(1), m.group(2))] = tuple(int(m.group(i)) for i in range(3, 7))
    return rows


def _manifest_rows(uri: Path) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    m = json.loads((uri / "manifest.json").read_text())
    return {
        (d, s): (st["videos"], st["normal"], st["abnormal"], st["snippets"])
        for d, e in m["domains"].items()
        for s, st in e["splits"].items()
    }


def _write_perfect_scores(uri: Path, out: Path) -> list[str]:
    """One ``<video_id>.npy`` per test video: the max ground truth of each snippet (a perfect detector)."""
    corpus = Corpus.open(str(uri))
    out.mkdir(parents=True, exist_ok=True)
    ids = []
    for v in corpus.videos(None, "test"):
        assert v.gt is not None
        t = v.features.shape[0]
        gt = np.asarray(v.gt, dtype=np.float64)
        s = np.array([gt[16 * i : 16 * (i + 1)].max() if 16 * i < gt.size else 0.0 for i in range(t)])
        np.save(out / f"{v.video_id}.npy", s.astype(np.float32))
        ids.append(v.video_id)
    return ids


# --------------------------------------------------------------------------------------------------
# corpus synth / info


def test_corpus_synth_then_info(synth: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]) -> None:
    uri, rc, synth_out = synth
    assert rc == 0
    assert (uri / "manifest.json").is_file()
    expected = _manifest_rows(uri)
    assert set(expected) == {(d, s) for d in DOMAINS for s in ("train", "test")}
    assert expected[("campus", "train")][0] == 8  # --videos
    assert _table_rows(synth_out) == expected  # synth prints the same description

    assert main(["corpus", "info", str(uri)]) == 0
    out = capsys.readouterr().out
    assert f"corpus {uri}" in out
    assert "feature_dim 8" in out and "fingerprint" in out
    assert _table_rows(out) == expected
    for (d, s), (videos, normal, abnormal, _) in expected.items():
        assert normal + abnormal == videos, (d, s)


def test_corpus_synth_refuses_an_existing_corpus(synth: tuple[Path, int, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    before = (uri / "manifest.json").read_bytes()
    assert main(["corpus", "synth", "--out", str(uri), "--domains", "2", "--videos", "8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and str(uri) in err and "already exists" in err
    assert "Traceback" not in err
    assert (uri / "manifest.json").read_bytes() == before


def test_corpus_info_of_a_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-corpus"
    assert main(["corpus", "info", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "no-corpus" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# benchmark build


def test_benchmark_build(synth: tuple[Path, int, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    out = tmp_path / "bench.json"
    assert main(["benchmark", "build", "--corpus", str(uri), "--out", str(out), "--set", "benchmark.folds=2"]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["domains"] == DOMAINS
    assert len(data["folds"]) == 2
    assert "benchmark with 2 fold(s)" in text and str(out) in text
    for fold in data["folds"]:
        i = fold["index"]
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"fold {i}:"))
        for d in DOMAINS:
            n_train, n_val, n_test = len(fold["train"][d]), len(fold["val"][d]), len(fold["test"][d])
            assert f"{d}: {n_train} train/{n_val} val/{n_test} test" in line
            assert n_test == _manifest_rows(uri)[(d, "test")][0]


def test_benchmark_build_bad_set(synth: tuple[Path, int, str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    out = tmp_path / "bench.json"
    assert main(["benchmark", "build", "--corpus", str(uri), "--out", str(out), "--set", "benchmark.folds=0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "benchmark.folds" in err
    assert not out.exists()


# --------------------------------------------------------------------------------------------------
# evaluate


def test_evaluate_perfect_scores(synth: tuple[Path, int, str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    scores = tmp_path / "scores"
    _write_perfect_scores(uri, scores)
    out = tmp_path / "eval" / "result.json"
    out.parent.mkdir()
    assert main(["evaluate", "--corpus", str(uri), "--scores", str(scores), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result["per_domain"]) == set(DOMAINS)
    for d in DOMAINS:
        m = result["per_domain"][d]
        assert m["auc"] == pytest.approx(1.0)
        assert m["ap"] == pytest.approx(1.0)
        assert re.search(rf"^{d}\s+AUC\s+100\.00\s+AP\s+100\.00$", text, re.M), text
    assert result["mean_auc"] == pytest.approx(1.0)
    assert re.search(r"^mean\s+AUC\s+100\.00$", text, re.M)
    assert result["scores"] == str(scores) and result["corpus"] == str(uri)


def test_evaluate_one_domain_and_two_folds(synth: tuple[Path, int, str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    a, b = tmp_path / "a", tmp_path / "b"
    _write_perfect_scores(uri, a)
    _write_perfect_scores(uri, b)
    out = tmp_path / "r.json"
    rc = main(["evaluate", "--corpus", str(uri), "--scores", str(a), "--scores", str(b), "--domains", "traffic",
               "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert list(result["per_domain"]) == ["traffic"]
    assert result["n_folds"] == 2 and result["mean_auc"] == pytest.approx(1.0)
    assert result["per_domain"]["traffic"]["auc_std"] == pytest.approx(0.0)
    assert "campus" not in capsys.readouterr().out


def test_evaluate_missing_score_file(synth: tuple[Path, int, str], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    scores = tmp_path / "scores"
    ids = _write_perfect_scores(uri, scores)
    gone = ids[3]
    (scores / f"{gone}.npy").unlink()
    out = tmp_path / "r.json"
    assert main(["evaluate", "--corpus", str(uri), "--scores", str(scores), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and gone in err and "without scores" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_evaluate_missing_score_dir(synth: tuple[Path, int, str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = synth
    assert main(["evaluate", "--corpus", str(uri), "--scores", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "nowhere" in err and "not found" in err


# --------------------------------------------------------------------------------------------------
# corpus import


def _rtfm(root: Path, specs: list[tuple[str, tuple[int, ...]]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for name, shape in specs:
        np.save(root / f"{name}.npy", rng.standard_normal(shape).astype(np.float32))
        lines.append(str(root / f"{name}.npy"))
    lst = root / "train.list"
    lst.write_text("\n".join(lines) + "\n")
    return lst


def test_corpus_import_rtfm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = _rtfm(tmp_path / "src", [("Abuse001", (4, 2, 6)), ("Normal001", (3, 2, 6)), ("Normal002", (5, 2, 6))])
    out = tmp_path / "corpus"
    rc = main(["corpus", "import", "--format", "rtfm", "--list", str(lst), "--domain", "UCF", "--split", "train",
               "--abnormal-first", "1", "--out", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "imported UCF/train: 3 videos (2 normal, 1 abnormal), 12 snippets" in text
    m = Corpus.open(str(out)).manifest
    st = m.domains["UCF"].splits["train"]
    assert (st.videos, st.normal, st.abnormal, st.snippets) == (3, 2, 1, 12)
    assert m.feature_dim == 6 and m.domains["UCF"].n_crops == 2

    assert main(["corpus", "info", str(out)]) == 0
    assert _table_rows(capsys.readouterr().out) == {("UCF", "train"): (3, 2, 1, 12)}


def test_corpus_import_with_root_rewrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = _rtfm(tmp_path / "src", [("a", (2, 6)), ("b", (3, 6))])
    moved = tmp_path / "moved"
    (tmp_path / "src").rename(moved)
    lst = moved / "train.list"
    out = tmp_path / "corpus"
    rc = main(["corpus", "import", "--format", "rtfm", "--list", str(lst), "--domain", "D", "--split", "train",
               "--abnormal-pattern", "^a$", "--root", f"{tmp_path / 'src'}={moved}", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert "2 videos (1 normal, 1 abnormal)" in capsys.readouterr().out


def test_corpus_import_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = _rtfm(tmp_path / "src", [("good", (3, 6)), ("bad", (7,))])  # rank-1 features
    out = tmp_path / "corpus"
    rc = main(["corpus", "import", "--format", "rtfm", "--list", str(lst), "--domain", "D", "--split", "train",
               "--abnormal-first", "1", "--out", str(out), "--quiet"])
    assert rc == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("omnivad: error:")
    assert "bad.npy" in captured.err and "shape" in captured.err
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""
    assert not Corpus.exists(str(out))


def test_corpus_import_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = _rtfm(tmp_path / "src", [("x", (3, 6))])
    lst.write_text(lst.read_text() + str(tmp_path / "src" / "ghost.npy") + "\n")
    rc = main(["corpus", "import", "--format", "rtfm", "--list", str(lst), "--domain", "D", "--split", "train",
               "--abnormal-first", "1", "--out", str(tmp_path / "c"), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "ghost.npy" in err and "not found" in err


def test_corpus_import_bad_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lst = _rtfm(tmp_path / "src", [("x", (3, 6))])
    rc = main(["corpus", "import", "--format", "rtfm", "--list", str(lst), "--domain", "D", "--split", "train",
               "--abnormal-first", "1", "--root", "no-equals", "--out", str(tmp_path / "c"), "--quiet"])
    assert rc == 1
    assert "--root 'no-equals'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# run --print-config


def test_run_print_config_flags(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "--print-config", "--protocol", "E2", "--method", "null-mil", "--no-ac", "--folds", "2",
               "--steps", "5", "--targets", "a,b", "--corpus", "/data/corpus"])
    assert rc == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["protocol"]["name"] == "E2"
    assert cfg["model"]["method"] == "null-mil"
    assert cfg["mdvad"]["ac"] is False
    assert cfg["protocol"]["folds"] == 2
    assert cfg["train"]["steps"] == 5
    assert cfg["protocol"]["targets"] == ["a", "b"]
    # everything else keeps its default
    assert cfg["mdvad"]["k"] == 3 and cfg["train"]["lr"] == pytest.approx(5e-5)


def test_run_print_config_more_flags_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train: {steps: 40, seed: 1}\nloss: {ac: false}\n")
    rc = main(["run", "--print-config", "--config", str(p), "--ac", "--seed", "9", "--workers", "2", "--gpu",
               "--corpus", str(tmp_path / "corp"), "--out", str(tmp_path / "runs"), "--folds", "5",
               "--set", "train.lr=1e-4"])
    assert rc == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["steps"] == 40  # from the file
    assert cfg["train"]["seed"] == 9 and cfg["mdvad"]["ac"] is True  # flags beat the file
    assert cfg["train"]["lr"] == pytest.approx(1e-4)
    assert cfg["scaling"]["workers"] == 2 and cfg["scaling"]["use_gpu"] is True
    assert cfg["corpus"]["uri"] == str(tmp_path / "corp") and cfg["storage"]["out"] == str(tmp_path / "runs")
    assert cfg["protocol"]["folds"] == 5 and cfg["benchmark"]["folds"] >= 5  # enough benchmark folds


def test_run_without_config_or_corpus_uses_the_demo_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["steps"] == 600 and cfg["train"]["lr"] == pytest.approx(1e-3)
    assert cfg["protocol"]["name"] == "E1" and cfg["model"]["method"] == "nullang-mil" and cfg["mdvad"]["ac"] is True
    # with a corpus the paper's budget applies (MDVAD A11)
    assert main(["run", "--print-config", "--corpus", "/data/corpus"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["steps"] == 15000 and cfg["train"]["lr"] == pytest.approx(5e-5)


def test_run_invalid_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--print-config", "--set", "train.lrr=1"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("omnivad: error:") and "train.lrr" in captured.err
    assert "unknown field" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_run_invalid_set_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--print-config", "--set", "loss.k=0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "loss.k" in err


def test_run_set_without_equals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--print-config", "--set", "foo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "foo" in err and "KEY=VALUE" in err


def test_run_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--print-config", "--config", str(tmp_path / "gone.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnivad: error:") and "gone.yaml" in err


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--protocol", "E9"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


# --------------------------------------------------------------------------------------------------
# Subprocess: the installed entry points


def test_subprocess_help_and_job_print_config() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-m", "omnivad", "--help"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for cmd in ("corpus", "benchmark", "evaluate", "run"):
        assert cmd in r.stdout

    r = subprocess.run([sys.executable, "jobs/mdvad.py", "--print-config", "--set", "train.steps=7"], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["train"]["steps"] == 7
    assert re.search(r"^  steps: 7$", r.stdout, re.M)
    assert cfg["mdvad"]["k"] == 3 and cfg["protocol"]["name"] == "E1"
