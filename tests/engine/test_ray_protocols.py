"""Ray integration: every protocol end to end on a small corpus, and resume after a kill.

These start a local Ray (2 CPUs) and real Ray Train / Ray Data runs, so they are marked ``ray`` and
kept few: one fixture corpus, tiny models, a handful of steps.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from omnivad import config, storage
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.spec import RunSpec
from omnivad.engine.train_loop import CRASH_ENV

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def corpus_uri(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("ray") / "corpus")
    # two domains: the least that has held-in, held-out and a cross matrix (each domain costs a Ray Data
    # pipeline in every run)
    synthesize(uri, SynthConfig(domains=2, videos_per_domain=24, test_videos_per_domain=8, dim=16, seed=1))
    return uri


def _cfg(corpus_uri: str, out: str, *extra: str) -> config.Config:
    return config.load(
        overrides=[
            f"corpus.uri={corpus_uri}", f"storage.out={out}", "train.steps=4", "train.finetune_steps=2", "train.e4_steps=2",
            "train.eval_every=2", "train.checkpoint_every=2", "data.batch_per_class=6", "benchmark.folds=1",
            "train.lr=1e-3", *extra,
        ]
    )


@pytest.mark.slow
def test_every_protocol_runs_end_to_end(ray_local, corpus_uri, tmp_path):
    from omnivad.protocols.runner import run_protocol

    out = str(tmp_path / "out")
    domains = Corpus.open(corpus_uri).domains
    target = domains[0]
    results = {}
    for protocol in ["single", "E1", "E2", "E3", "E4"]:
        cfg = _cfg(corpus_uri, out, f"protocol.name={protocol}", f"protocol.targets=[{target}]", "model.method=null-mil")
        results[protocol] = run_protocol(cfg)

    for protocol, r in results.items():
        on_disk = json.loads(open(os.path.join(r["results_uri"], "results.json")).read())
        assert on_disk["protocol"] == protocol and on_disk["method"] == "null-mil" and on_disk["ac"] is True
        assert on_disk["config"]["protocol"]["name"] == protocol
        assert on_disk["corpus"]["fingerprint"] == Corpus.open(corpus_uri).fingerprint()
        tested = domains if protocol in ("single", "E1") else [target]
        assert sorted(on_disk["per_domain"]) == sorted(tested)
        for m in on_disk["per_domain"].values():
            assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["ap"] <= 1.0
        assert 0.0 <= on_disk["mean_auc"] <= 1.0
        md = open(os.path.join(r["results_uri"], "results.md")).read()
        assert "|" in md and ("Avg." in md or "Out Avg." in md)
    # the single-domain protocol fills the whole cross matrix with an Out Avg. row
    single = results["single"]
    assert set(single["matrix"]) == set(domains) and all(set(row) == set(domains) for row in single["matrix"].values())
    assert "Out Avg." in single["table"]
    # E4 reports both starting points; E3/E4 reused the E2/E1 pre-training runs instead of retraining
    assert {s["start"] for s in results["E4"]["starts"]} == {"E1", "E2"}
    e2_ckpt = results["E2"]["checkpoints"][0]
    e3_payload = ckpt.read_model(results["E3"]["checkpoints"][0])
    assert e3_payload["spec"]["init_model"] == e2_ckpt
    # the fine-tuned E3 model kept the source heads only (no head for the unseen target)
    assert target not in e3_payload["domains"]


def _fit(corpus_uri: str, out: str) -> str:
    from omnivad.engine.trainer import fit

    cfg = _cfg(corpus_uri, out, "train.steps=6", "model.method=nullang-mil")
    corpus = Corpus.open(corpus_uri)
    split = build_benchmark(corpus, cfg.benchmark, corpus.domains).protocol_splits("E1", 0)
    spec = RunSpec(name="run", corpus_uri=corpus_uri, train=split.train, val=split.val,
                   head_domains=corpus.domains, steps=6, seed=0)
    return fit(cfg, spec)


def test_killed_run_resumes_to_the_same_result(ray_local, corpus_uri, tmp_path, monkeypatch):
    from omnivad.engine.evaluate import evaluate_model

    straight = _fit(corpus_uri, str(tmp_path / "straight"))

    killed_out = str(tmp_path / "killed")
    monkeypatch.setenv(CRASH_ENV, "3")  # the worker process dies (os._exit) right after step 3
    with pytest.raises(Exception):
        _fit(corpus_uri, killed_out)
    fs, path = storage.filesystem(killed_out)
    assert not fs.exists(f"{path}/run/model.pt")  # no half-written result
    monkeypatch.delenv(CRASH_ENV)
    resumed = _fit(corpus_uri, killed_out)  # restarts from the step-2 checkpoint

    a, b = ckpt.read_model(straight), ckpt.read_model(resumed)
    assert a["selected"] == b["selected"]
    assert [h["step"] for h in b["history"]] == [2, 4, 6]
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b["model"][k]), k
    corpus = Corpus.open(corpus_uri)
    ma = evaluate_model(straight, corpus, corpus.domains)
    mb = evaluate_model(resumed, corpus, corpus.domains)
    assert ma["mean_auc"] == mb["mean_auc"]
    np.testing.assert_equal([ma["per_domain"][d]["auc"] for d in corpus.domains],
                            [mb["per_domain"][d]["auc"] for d in corpus.domains])
