"""What a trial trains (E1 / E2 / both plans) and how a search's results are written (no Ray)."""

from __future__ import annotations

import csv
import math
import os

import pytest
import yaml

from omnivad import config
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.errors import ConfigError
from omnivad.tune.search import _objective_values, plan_runs, write_results
from omnivad.tune.space import resolve_space


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("plan") / "corpus")
    synthesize(uri, SynthConfig(domains=3, videos_per_domain=24, test_videos_per_domain=4, dim=8, seed=2))
    return Corpus.open(uri)


def test_both_plans_e1_first_then_one_held_out_run_per_target(corpus):
    cfg = config.load(overrides=["tune.objective=both", "benchmark.folds=1", "train.steps=7"])
    bench = build_benchmark(corpus, cfg.benchmark, corpus.domains)
    runs = plan_runs(cfg, bench, corpus.uri, corpus.domains)
    assert [(r["objective"], r["key"]) for r in runs] == [("E1", "E1")] + [("E2", d) for d in corpus.domains]
    fold = bench.fold(0)
    e1 = runs[0]["spec"]
    assert e1["head_domains"] == corpus.domains and e1["val"] == {d: fold.val[d] for d in corpus.domains}
    for r in runs[1:]:
        t, spec = r["key"], r["spec"]
        assert t not in spec["train"] and t not in spec["head_domains"]  # held out from training and heads
        assert spec["val"] == {t: fold.val[t]} and spec["steps"] == 7
        assert not set(spec["val"][t]) & set(fold.test.get(t, []))  # validation only, never test videos


def test_plan_errors_name_the_field(corpus):
    cfg = config.load(overrides=["benchmark.folds=1", "benchmark.val_fraction=0"])
    bench = build_benchmark(corpus, cfg.benchmark, corpus.domains)
    with pytest.raises(ConfigError, match="benchmark.val_fraction"):
        plan_runs(cfg, bench, corpus.uri, corpus.domains)
    cfg = config.load(overrides=["benchmark.folds=1", "tune.objective=E2", "tune.targets=[nowhere]"])
    with pytest.raises(ConfigError, match="tune.targets"):
        plan_runs(cfg, build_benchmark(corpus, cfg.benchmark, corpus.domains), corpus.uri, corpus.domains)
    cfg = config.load(overrides=["benchmark.folds=1", "tune.fold=2"])
    with pytest.raises(ConfigError, match="tune.fold"):
        plan_runs(cfg, build_benchmark(corpus, cfg.benchmark, corpus.domains), corpus.uri, corpus.domains)


def test_running_objective_is_the_mean_over_finished_and_current_runs():
    done = {"E1": [0.8], "E2": [0.6, 0.7]}
    assert _objective_values(done, ["E1", "E2"], ("E2", 0.8)) == pytest.approx({"e1_val_auc": 0.8, "e2_val_auc": 0.7})
    vals = _objective_values({"E1": [], "E2": []}, ["E1", "E2"], ("E1", 0.55))
    assert vals["e1_val_auc"] == 0.55 and math.isnan(vals["e2_val_auc"])


def test_multi_objective_results_pareto_tables_plot_and_best_config(tmp_path):
    cfg = config.load(overrides=["tune.objective=both", "tune.evaluate_test=false", "data.segments=32",
                                 "tune.space=[{path: loss.tau, low: 0.1, high: 0.6}, {path: loss.topk_ratio, low: 0.03, high: 0.25}]"])
    space = resolve_space(cfg)
    rows = [
        {"trial_id": "t1", "status": "completed", "step": 20, "e1_val_auc": 0.90, "e2_val_auc": 0.60, "loss.tau": 0.2, "loss.topk_ratio": 0.1},
        {"trial_id": "t2", "status": "completed", "step": 20, "e1_val_auc": 0.85, "e2_val_auc": 0.75, "loss.tau": 0.4, "loss.topk_ratio": 0.25},
        {"trial_id": "t3", "status": "completed", "step": 20, "e1_val_auc": 0.80, "e2_val_auc": 0.70, "loss.tau": 0.5, "loss.topk_ratio": 0.2},
        {"trial_id": "t4", "status": "stopped", "step": 5, "e1_val_auc": 0.95, "e2_val_auc": 0.95, "loss.tau": 0.3, "loss.topk_ratio": 0.1},
    ]
    sdir = str(tmp_path / "search")
    summary = write_results(cfg, sdir, rows, [], space, corpus=None, test_domains=[])
    # stopped trials are partial: never on the front; t3 is dominated by t2
    assert [r["trial_id"] for r in summary["pareto"]] == ["t1", "t2"]
    front = list(csv.DictReader(open(os.path.join(sdir, "pareto.csv"))))
    assert [r["trial_id"] for r in front] == ["t1", "t2"]
    assert open(os.path.join(sdir, "pareto.png"), "rb").read(4) == b"\x89PNG"
    assert "| t2 |" in open(os.path.join(sdir, "pareto.md")).read()
    assert len(list(csv.DictReader(open(os.path.join(sdir, "trials.csv"))))) == 4
    # best = the front's best mean of the two objectives (t2: 0.80 > t1: 0.75), a loadable config
    assert summary["best"]["trial_id"] == "t2"
    best = config.load(os.path.join(sdir, "best_config.yaml"))
    assert best.loss.tau == 0.4 and best.loss.k == 8 and best.protocol.name == "E1"
    assert sorted(os.listdir(os.path.join(sdir, "pareto_configs"))) == ["t1.yaml", "t2.yaml"]
    assert yaml.safe_load(open(os.path.join(sdir, "pareto_configs", "t1.yaml")))["mdvad"]["k"] == round(0.1 * 32)
    assert not os.path.exists(os.path.join(sdir, "best_test.json"))
