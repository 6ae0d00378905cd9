"""What a person reads (and what tracking records): a small protocol run's log (stdout + stderr of ``omnivad run``) carries the profile, steps
and lr, "run i/N", step lines with elapsed time and ETA, and none of Ray's known noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from omnivad.corpus.synth import SynthConfig, synthesize

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]


def test_small_run_log_is_readable(tmp_path: Path) -> None:
    corpus = str(tmp_path / "corpus")
    synthesize(corpus, SynthConfig(domains=2, videos_per_domain=16, test_videos_per_domain=6, dim=8, seed=3))
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "OMNIVAD_HOME": str(tmp_path / "home")}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "omnivad", "run", "--corpus", corpus, "--out", str(tmp_path / "out"), "--steps", "4",
           "--set", "train.log_every=2", "--set", "train.eval_every=2", "--set", "benchmark.folds=1",
           "--set", "data.batch_per_class=4", "--set", "ray.num_cpus=2", "--set", "tracking.backend=tensorboard"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert "PlacementGroupCleaner" not in log
    assert "DeprecationWarning" not in log and "is deprecated" not in log
    assert "run 1/1: started" in log and "run 1/1 finished" in log
    assert "profile paper: steps 4, lr 5e-05" in log and "no earlier runs of this config" in log
    steps = [line for line in log.splitlines() if " step 4/4 " in line]
    assert steps and "elapsed " in steps[0] and " eta 0s" in steps[0], log[-3000:]
    # tracking from rank 0 of the real training loop: the run's TensorBoard event file holds its logged steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((tmp_path / "out" / "runs").glob("*/*/fold0/E1/tensorboard/events.out.tfevents.*"))
    assert len(events) == 1, events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [2, 4] and len(acc.Scalars("val_auc")) == 2
