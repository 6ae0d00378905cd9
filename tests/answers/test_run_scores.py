"""Issue 16 item 1 (and the run side of item 2) through one real small protocol run: the score files, their
CSV, ``omnivad evaluate RUN_DIR`` matching results.json exactly, and the stored operating threshold."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from omnivad import config
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.protocols.scores import CSV_FIELDS, job_folder

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def run(ray_local, tmp_path_factory):
    from omnivad.protocols.runner import run_protocol

    base = tmp_path_factory.mktemp("answers")
    corpus = str(base / "corpus")
    synthesize(corpus, SynthConfig(domains=2, videos_per_domain=16, test_videos_per_domain=6, dim=8, seed=3))
    cfg = config.load(overrides=[
        f"corpus.uri={corpus}", f"storage.out={base / 'out'}", "protocol.name=E1", "model.method=null-mil",
        "train.steps=4", "train.eval_every=2", "train.checkpoint_every=2", "data.batch_per_class=4",
        "benchmark.folds=1", "mdvad.hidden=8",
    ])
    return run_protocol(cfg), corpus


def test_scores_on_disk_layout(run) -> None:
    result, corpus_uri = run
    rd = Path(result["results_uri"])
    corpus = Corpus.open(corpus_uri)
    rows = list(csv.DictReader(open(rd / "scores.csv")))
    assert open(rd / "scores.csv").readline().strip() == ",".join(CSV_FIELDS)
    job = "null-mil+ac/fold0/E1"
    assert {r["job"] for r in rows} == {job} and {r["fold"] for r in rows} == {"0"} and {r["key"] for r in rows} == {"0"}
    for d in corpus.domains:
        test = {r["video_id"]: r for r in corpus.table(d, "test", columns=["video_id", "label", "n_snippets"]).to_pylist()}
        mine = {r["video_id"]: r for r in rows if r["domain"] == d}
        assert sorted(mine) == sorted(test)
        for vid, r in mine.items():
            assert r["scores"] == f"scores/{job_folder(job)}/{d}/{vid}.npy" == f"scores/null-mil+ac%2Ffold0%2FE1/{d}/{vid}.npy"
            assert r["ac"] == r["scores"][:-4] + ".ac.npy"
            s, ac = np.load(rd / r["scores"]), np.load(rd / r["ac"])
            assert s.dtype == ac.dtype == np.float32 and s.shape == ac.shape == (test[vid]["n_snippets"],)
            assert int(r["n_snippets"]) == test[vid]["n_snippets"] and int(r["label"]) == test[vid]["label"]
            assert ((ac >= 0) & (ac <= 1)).all()


def test_saved_scores_are_the_models(run) -> None:
    from omnivad.api import load_model

    result, corpus_uri = run
    rd = Path(result["results_uri"])
    model = load_model(result["checkpoints"][0])
    corpus = Corpus.open(corpus_uri)
    d = corpus.domains[1]
    v = next(iter(corpus.videos(d, "test")))
    want = model.score(v.features.transpose(1, 0, 2), d)
    got = np.load(rd / "scores" / job_folder("null-mil+ac/fold0/E1") / d / f"{v.video_id}.npy")
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_evaluate_run_dir_matches_results_exactly(run, tmp_path, capsys) -> None:
    from omnivad.cli import main
    from omnivad.protocols.scores import reevaluate

    result, _ = run
    rd = result["results_uri"]
    again = reevaluate(rd)
    assert again["matches"] is True and again["differences"] == []
    saved = json.load(open(os.path.join(rd, "results.json")))
    assert again["results"][0]["per_domain"] == saved["per_domain"] and again["results"][0]["mean_auc"] == saved["mean_auc"]
    assert saved["per_category"] and again["results"][0]["per_category"] == saved["per_category"]  # synth categories
    out = tmp_path / "re.json"
    assert main(["evaluate", rd, "--out", str(out)]) == 0
    assert json.load(open(out))["matches"] is True
    # a changed score file is found
    copy = tmp_path / "copy"
    shutil.copytree(rd, copy)
    row = next(csv.DictReader(open(copy / "scores.csv")))
    s = np.load(copy / row["scores"])
    np.save(copy / row["scores"], s[::-1].copy() + np.linspace(0, 1, s.size, dtype=np.float32))
    assert main(["evaluate", str(copy)]) == 1
    assert "DIFFER from results.json: per_domain" in capsys.readouterr().out
    os.remove(copy / "scores.csv")
    assert main(["evaluate", str(copy)]) == 1
    assert "scores.csv: no such file" in capsys.readouterr().err


def test_operating_threshold_stored_and_used_by_predict(run, tmp_path) -> None:
    from omnivad.cli import main
    from omnivad.engine.threshold import FRAME_RULE, VIDEO_RULE

    result, corpus_uri = run
    saved = json.load(open(os.path.join(result["results_uri"], "results.json")))
    thr = saved["thresholds"]["null-mil+ac/fold0/E1"]
    assert thr["rule"] in (FRAME_RULE, VIDEO_RULE) and isinstance(thr["value"], float) and 0 < thr["val_f1"] <= 1
    model = result["checkpoints"][0]
    assert json.load(open(os.path.join(os.path.dirname(model), "threshold.json"))) == thr
    d = Corpus.open(corpus_uri).domains[0]
    out = tmp_path / "pred"
    assert main(["predict", "--model", model, "--corpus", corpus_uri, "--domain", d, "--out", str(out),
                 "--threshold", "run"]) == 0
    assert json.load(open(out / "threshold.json"))["value"] == thr["value"]
    for r in csv.DictReader(open(out / "intervals.csv")):
        f = np.load(out / "frames" / f"{r['video_id']}.npy")
        a, b = int(r["start_frame"]), int(r["end_frame"])
        assert (f[a:b] >= thr["value"]).all() and (a == 0 or f[a - 1] < thr["value"])
    # the run's model exports too
    from omnivad.export import export_model, load_exported

    export_model(model, "torchscript", str(tmp_path / "m.ts"), d)
    x = torch.randn(2, 11, Corpus.open(corpus_uri).feature_dim)
    from omnivad.api import load_model

    torch.testing.assert_close(load_exported(str(tmp_path / "m.ts"), "torchscript")(x),
                               torch.from_numpy(load_model(model).score(x.numpy(), d)), atol=1e-5, rtol=0)
