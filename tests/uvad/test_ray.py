"""One module × one loop through the Ray executor: Ray Train runs, Ray Data scoring, label datasets."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from omnivad import config
from omnivad.uvad.runner import run_uvad
from tests.uvad.test_interleave import unlabelled_corpus

pytestmark = pytest.mark.ray


def test_one_loop_on_ray(tmp_path, ray_local):
    corpus = unlabelled_corpus(str(tmp_path / "corpus"), videos=10, test_videos=0)
    cfg = config.load(overrides=[
        f"corpus.uri={corpus}", f"storage.out={tmp_path / 'out'}", "uvad.executor=ray", "uvad.loops=1",
        "uvad.max_modules=1", "uvad.ws_iters=10", "uvad.ws_batch=4", "uvad.occ_hidden=16", "uvad.occ_batch=64",
    ])
    res = run_uvad(cfg)
    assert res["executed"]["campus"] == [[1, 1]]
    dom = res["per_domain"]["campus"]
    assert dom["finished"] and dom["stopped_by"] == "module cap" and dom["modules"][0]["T"] == dom["t1"]
    data = os.path.join(res["run"], "campus", "data", "m1-l1")
    soft = pq.read_table(os.path.join(data, "soft_labels.parquet"))
    hard = pq.read_table(os.path.join(data, "hard_labels.parquet"))
    n = dom["n_snippets"]
    assert soft.num_rows == hard.num_rows == n
    w = soft.column("w").to_numpy()
    assert 0 < w.mean() < 0.5  # module 1: Beta(1, 5) draws (mean 1/6)
    labels = hard.column("label").to_numpy()
    assert 0 < labels.sum() <= dom["t1"]  # Eq. 3 with T_1 (after the clean-up pass)
    assert np.isfinite(dom["loops"][0]["occ_loss_last"]) and np.isfinite(dom["loops"][0]["ws_loss_last"])
    assert any(f.endswith(".pt") for f in os.listdir(os.path.join(res["run"], "campus")))
    again = run_uvad(cfg)  # a finished run is reused, nothing is retrained
    assert again["executed"]["campus"] == []
