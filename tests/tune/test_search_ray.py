"""Ray Tune search end to end on a small synthetic corpus (real Ray Tune + Ray Train trials).

1. From a deliberately bad config (lr 1e-5, tau 0.95, m 0) evaluated first, a seeded TPE search finds a
   config whose validation AUC is clearly better; ASHA stops trials early; the results are written
   (trials table, a best_config.yaml that loads, best_test.json apart).
2. A search whose driver is SIGKILLed after a trial finished resumes with --resume, does not rerun the
   finished trial, and completes.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from omnivad import config
from omnivad.corpus.synth import SynthConfig, synthesize

pytestmark = pytest.mark.ray

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEED = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))  # corpus and training seed offset (tests/margins.py)
COMMON = [
    "train.eval_every=5", "train.checkpoint_every=10", "train.log_every=100", "data.batch_per_class=12",
    "benchmark.folds=1", "benchmark.val_fraction=0.4", f"train.seed={SEED}",
]
BAD = ["train.lr=1e-5", "loss.tau=0.95", "loss.margin=0"]


@pytest.fixture(scope="module")
def corpus_uri(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("tune") / "corpus")
    # 40 videos per domain, 40% carved for validation: 24 train as before and 16 validation videos per domain (was
    # 6). With 6, the untrained start point's validation AUC was noisy enough that best − start ranged 0.05-0.17 over
    # OMNIVAD_TEST_SEED 1-4 (tests/README.md).
    synthesize(uri, SynthConfig(domains=3, videos_per_domain=40, test_videos_per_domain=8, dim=16, seed=1 + SEED))
    return uri


def _attempts(search: str) -> dict[str, int]:
    return {os.path.basename(d): len(os.listdir(os.path.join(d, "attempts")))
            for d in glob.glob(os.path.join(search, "trials", "*")) if os.path.isdir(os.path.join(d, "attempts"))}


@pytest.mark.slow  # ~75 s; trial-level resume is also covered by tests/engine's killed-run test
def test_resume_after_driver_killed(corpus_uri, tmp_path):
    """Runs before the in-process Ray of the next test: the job starts its own local Ray."""
    out = str(tmp_path / "out")
    args = [sys.executable, os.path.join(ROOT, "jobs", "tune.py"), "--corpus", corpus_uri, "--out", out, "--trials", "2",
            "--steps", "10", "--set", "tune.asha=false", "--set", "tune.evaluate_test=false", "--set", "ray.num_cpus=2",
            *[a for s in COMMON for a in ("--set", s)]]
    search = os.path.join(out, "search")
    log = open(tmp_path / "first.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 600
        finished: set[str] = set()
        while time.time() < deadline and proc.poll() is None:
            for f in glob.glob(os.path.join(search, "tune", "experiment_state-*.json")):
                try:
                    state = json.load(open(f))
                except (OSError, ValueError):
                    continue
                for trial_json, _run_json in state.get("trial_data", []):
                    trial = json.loads(trial_json)
                    if trial.get("status") == "TERMINATED":
                        finished.add(trial["trial_id"])
            if finished:
                break
            time.sleep(0.5)
        assert finished, "no trial finished before the deadline"
        assert proc.poll() is None, "the search ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = _attempts(search)
    assert all(before[t] == 1 for t in finished)

    res = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600, start_new_session=True)
    assert res.returncode == 0, res.stderr[-3000:]
    after = _attempts(search)
    for t in finished:  # the finished trial did not run again
        assert after[t] == 1
    rows = open(os.path.join(search, "trials.csv")).read().strip().splitlines()
    assert len(rows) == 1 + 2 and all(",completed," in r for r in rows[1:])
    assert os.path.exists(os.path.join(search, "best_config.yaml"))


@pytest.mark.learning
def test_search_improves_on_a_bad_start_and_asha_stops(ray_local, corpus_uri, tmp_path, claim):
    from omnivad.tune.search import run_search

    # 100 steps: measured without Ray on this corpus, lr 1e-3 reaches ~0.72 validation AUC, lr 3e-3 ~0.69,
    # the bad start ~0.57. tune.seed=32: Optuna's (seeded, random-startup) suggestions after the start point
    # have lr 6.8e-4, 1.4e-3, 2.2e-6, 9.3e-5 -- two good trials first, then two that learn nothing, which
    # ASHA (grace 20 steps, halving) must stop below the rung's median.
    cfg = config.load(overrides=[
        f"corpus.uri={corpus_uri}", f"storage.out={tmp_path / 'out'}", "train.steps=100", *COMMON, *BAD,
        "train.eval_every=20", "train.checkpoint_every=50",
        "tune.trials=5", "tune.seed=32", "tune.grace_steps=20", "tune.reduction_factor=2",
        "tune.space=[{path: train.lr, low: 1e-6, high: 2e-3, log: true}, {path: loss.tau, low: 0.1, high: 0.6}, "
        "{path: loss.margin, low: 0.0, high: 0.6}]",
    ])
    summary = run_search(cfg)
    rows = summary["trials"]
    assert len(rows) == 5
    start = [r for r in rows if r["start_point"]]
    assert len(start) == 1 and start[0]["loss.tau"] == pytest.approx(0.95) and start[0]["train.lr"] == pytest.approx(1e-5)
    assert start[0]["status"] == "completed"
    best = summary["best"]
    print({r["trial_id"]: (r["status"], r["step"], round(r["e1_val_auc"], 3), r["train.lr"]) for r in rows})
    claim("best − start validation AUC", best["e1_val_auc"] - start[0]["e1_val_auc"], ">=", 0.08)
    assert best["train.lr"] > 5e-4, best
    # ASHA stopped at least one trial before its 100 steps, and stopped trials were worse than the best
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert stopped and all(r["step"] < 100 for r in stopped)
    assert all(r["e1_val_auc"] < best["e1_val_auc"] for r in stopped)

    search = summary["search_uri"]
    best_cfg = config.load(os.path.join(search, "best_config.yaml"))
    assert best_cfg.train.lr == pytest.approx(best["train.lr"]) and best_cfg.protocol.name == "E1"
    assert best_cfg.loss.tau == pytest.approx(best["loss.tau"])
    table = open(os.path.join(search, "trials.md")).read()
    assert table.count("\n| ") == 1 + 5 and "stopped" in table
    test = json.load(open(os.path.join(search, "best_test.json")))
    assert "TEST SET" in test["note"] and list(test["trials"]) == [str(best["trial_id"])]
    assert 0.0 <= test["trials"][str(best["trial_id"])]["E1"]["mean_auc"] <= 1.0
    # each finished trial kept its Ray Train checkpoints and selected model
    assert os.path.exists(os.path.join(search, "trials", str(best["trial_id"]), "E1", "model.pt"))
