"""The Ray executor: domains in parallel on one worker group, resume after a crash, a clean stop on signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from omnivad import config
from omnivad.uvad.runner import run_uvad
from tests.uvad.test_interleave import check_resume_equals_straight_run, unlabelled_corpus

pytestmark = pytest.mark.ray
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["uvad.ws_iters=10", "uvad.ws_batch=4", "uvad.occ_hidden=16", "uvad.occ_batch=64"]


def test_domains_run_in_parallel_on_one_worker_group(tmp_path, ray_local):
    corpus = unlabelled_corpus(str(tmp_path / "corpus"), videos=10, test_videos=4, domains=2)
    cfg = config.load(overrides=[f"corpus.uri={corpus}", f"storage.out={tmp_path / 'out'}", "uvad.executor=ray",
                                 "uvad.loops=2", "uvad.max_modules=1", *TINY])
    res = run_uvad(cfg)
    assert len(res["per_domain"]) == 2
    for d, dom in res["per_domain"].items():
        assert res["executed"][d] == [[1, 1], [1, 2]]
        assert dom["finished"] and dom["stopped_by"] == "module cap" and dom["modules"][0]["T"] == dom["t1"]
        assert all(r["T"] == dom["t1"] for r in dom["loops"]) and dom["loops"][0]["ws_auc"] is not None
    # one launch for the job, no per-model runs or label datasets
    assert os.listdir(os.path.join(res["run"], "ray")) == ["domains"]
    assert not any(os.path.exists(os.path.join(res["run"], d, "data")) for d in res["per_domain"])
    again = run_uvad(cfg)  # a finished run is reused, nothing is retrained, no worker group starts
    assert all(v == [] for v in again["executed"].values())


def test_resume_after_a_crash_on_ray(tmp_path, ray_local):
    check_resume_equals_straight_run(tmp_path, "ray")


def _job(corpus: str, out: str, *extra: str) -> list[str]:
    sets = sum((["--set", s] for s in ["uvad.loops=2", "uvad.max_modules=2", "uvad.ws_iters=150", "ray.num_cpus=2"]), [])
    return [sys.executable, os.path.join(REPO, "jobs", "uvad.py"), "--corpus", corpus, "--out", out, *sets, *extra]


def _stop_after_a_commit(cmd: list[str], env: dict[str, str], err_path, sig: signal.Signals, out: str) -> list:
    """Start the job, wait until it commits a loop (``state.json`` written by this process), send ``sig``; check the
    stop is clean (exit 128+sig within 20 s, one line, no stack dump) and return what that commit recorded."""
    with open(err_path, "w") as err_file:  # a file, not a pipe: Ray's logs would fill a pipe nobody reads yet
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, env=env)
    started = time.time()
    deadline = started + 240
    state = None
    while time.time() < deadline and proc.poll() is None:
        found = [os.path.join(r, "state.json") for r, _, f in os.walk(out) if "state.json" in f]
        if found and os.path.getmtime(found[0]) >= started and json.loads(open(found[0]).read()).get("executed"):
            state = found[0]  # committed by this process (written atomically: never half a file)
            break
        time.sleep(0.2)
    if state is None:
        proc.kill()
        pytest.fail(f"no loop committed within 240 s (rc {proc.wait()}):\n{err_path.read_text()[-3000:]}")
    before = len(err_path.read_bytes())
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{sig.name}: the job did not stop within 20 s")
    # what the stop printed (before it: Ray's start-up logs, which on a machine shared with other Ray
    # instances include tracebacks of Ray's own actors looking for "the" cluster)
    err = err_path.read_bytes()[before:].decode(errors="replace")
    assert proc.returncode == 128 + sig.value, err[-2000:]
    for marker in ("Traceback", "Fatal Python error", "*** SIGTERM received", "*** SIGINT received"):
        assert marker not in err, err[-3000:]
    # one line of the job's own (Ray's log monitor may still flush a worker's last lines after it)
    assert sum(line.startswith(f"uvad: interrupted ({sig.name})") for line in err.splitlines()) == 1, err[-3000:]
    return json.loads(open(state).read())["executed"]


def test_signals_stop_the_job_cleanly_and_it_resumes(tmp_path):
    """SIGINT stops the job after its first committed loop; the job started again resumes after it (on Ray) and
    SIGTERM stops it after its next commit; the run then finishes without recomputing either committed loop."""
    corpus = unlabelled_corpus(str(tmp_path / "corpus"), videos=10, test_videos=4, seed=1)
    out = str(tmp_path / "out")
    env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "platform") + os.pathsep + REPO}
    first = _stop_after_a_commit(_job(corpus, out), env, tmp_path / "int.txt", signal.SIGINT, out)
    assert first and first[0] == [1, 1]
    second = _stop_after_a_commit(_job(corpus, out), env, tmp_path / "term.txt", signal.SIGTERM, out)
    assert second and second[0] == [1, 2]  # resumed after the loop SIGINT left committed
    # the committed state resumes (in-process here: the run directory does not depend on the executor)
    done = subprocess.run(_job(corpus, out, "--local"), capture_output=True, text=True, timeout=300,
                          env={**env, "OMP_NUM_THREADS": "1"})  # 2 threads on 2 contended cores: minutes
    assert done.returncode == 0, done.stderr[-2000:]
    results = done.stdout.strip().splitlines()[-1].removeprefix("results: ")
    resumed = json.loads(open(results).read())
    assert resumed["per_domain"]["campus"]["finished"]
    executed = resumed["executed"]["campus"]
    assert executed and [1, 1] not in executed and [1, 2] not in executed  # committed loops were not recomputed
