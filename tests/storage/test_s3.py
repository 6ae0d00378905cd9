"""Corpora, checkpoints and results on s3:// against a real S3 endpoint on loopback (moto's server).

Credentials and the endpoint come only from the standard AWS environment (``s3_bucket`` /
``ray_s3`` set them); nothing S3-specific is in any config.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from omnivad import storage
from omnivad.cli import main
from omnivad.corpus.format import Corpus, CorpusWriter, Video
from omnivad.corpus.importers import import_corpus
from omnivad.errors import CorpusError, StorageError
from omnivad.protocols import protocol_splits

C = 8


def _rtfm(root: Path, specs: list[tuple[str, int]], *, nan_last: bool = False) -> tuple[Path, dict[str, np.ndarray]]:
    """RTFM layout: one ``(T, crops, C)`` .npy per video and a list file naming them."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    arrays, lines = {}, []
    for i, (name, t) in enumerate(specs):
        a = rng.standard_normal((t, 3, C)).astype(np.float32)
        if nan_last and i == len(specs) - 1:
            a[1, 0, 2] = np.nan
        np.save(root / f"{name}.npy", a)
        arrays[name] = a
        lines.append(str(root / f"{name}.npy"))
    (root / "videos.list").write_text("\n".join(lines) + "\n")
    return root / "videos.list", arrays


def _videos(n: int, domain: str = "d0") -> list[Video]:
    rng = np.random.default_rng(1)
    return [Video(video_id=f"v{i}", domain=domain, split="train", label=i % 2,
                  features=rng.standard_normal((3 + i, 1, 4)).astype(np.float32)) for i in range(n)]


# --------------------------------------------------------------------------------------------------
# corpus import / read / CLI (no Ray)


def test_import_to_s3_reads_back_exactly_and_failures_leave_nothing(s3_server, s3_bucket, tmp_path, capsys):
    uri = f"s3://{s3_bucket}/corpus"
    lst, arrays = _rtfm(tmp_path / "shop", [("a0", 5), ("a1", 7), ("n0", 3), ("n1", 4)])
    import_corpus("rtfm", lst, uri, domain="shop", split="train", abnormal_first=2, progress=False)

    keys = s3_server.keys(s3_bucket)
    assert "corpus/manifest.json" in keys and any(k.startswith("corpus/videos/domain=shop/split=train/") for k in keys)
    corpus = Corpus.open(uri)
    got = {v.video_id: v for v in corpus.videos()}
    assert sorted(got) == sorted(arrays)
    for vid, a in arrays.items():
        np.testing.assert_array_equal(got[vid].features, a)
        assert got[vid].label == int(vid.startswith("a"))
    assert corpus.part_uris()[0].startswith(f"s3://{s3_bucket}/corpus/videos/")

    # a failing import (NaN in the last file) into a new prefix writes nothing ...
    bad, _ = _rtfm(tmp_path / "park", [("p0", 4), ("p1", 5), ("p2", 6)], nan_last=True)
    with pytest.raises(CorpusError, match=r"p2\.npy.*1 NaN"):
        import_corpus("rtfm", bad, f"s3://{s3_bucket}/other", domain="park", split="train",
                      abnormal_first=1, progress=False)
    assert s3_server.keys(s3_bucket, "other") == []
    # ... and into the existing corpus leaves it byte for byte as it was
    with pytest.raises(CorpusError, match="NaN"):
        import_corpus("rtfm", bad, uri, domain="park", split="train", abnormal_first=1, progress=False)
    assert s3_server.keys(s3_bucket) == keys
    assert Corpus.open(uri).manifest == corpus.manifest

    # parts already flushed by an aborted writer are deleted from the bucket
    with pytest.raises(RuntimeError, match="boom"):
        with CorpusWriter(f"s3://{s3_bucket}/aborted", feature_dim=4, part_bytes=1) as writer:
            for v in _videos(3):
                writer.add(v)
            # three parts and the write lock (a conditional PUT) while the writer runs
            assert "aborted/.omnivad-write.lock" in s3_server.keys(s3_bucket, "aborted/")
            assert len(s3_server.keys(s3_bucket, "aborted/")) == 4
            raise RuntimeError("boom")
    assert s3_server.keys(s3_bucket, "aborted/") == []

    assert main(["corpus", "info", uri]) == 0
    out = capsys.readouterr().out
    assert f"corpus {uri}" in out and "shop" in out and f"fingerprint {corpus.fingerprint()}" in out


# --------------------------------------------------------------------------------------------------
# an endpoint outage: retried within the budget, a clear StorageError after it


def test_writes_and_reads_retry_across_an_endpoint_restart(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv(storage.RETRY_SECONDS_ENV, "40")
    monkeypatch.setenv(storage.ATTEMPTS_ENV, "1")  # each attempt fails fast; storage.retrying backs off
    monkeypatch.setenv(storage.CONNECT_TIMEOUT_ENV, "2")
    uri = f"s3://{s3_bucket}/corpus"
    fs, root = storage.filesystem(uri)
    storage.write_json_atomic(fs, f"{root}/before.json", {"written": "before"})
    videos = _videos(4)
    writer = CorpusWriter(uri, feature_dim=4)
    for v in videos:
        writer.add(v)

    s3_server.stop()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["manifest"] = writer.commit()  # parts + manifest: every PUT first hits a dead endpoint
            outcome["read"] = storage.read_json(fs, f"{root}/before.json")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    time.sleep(2.0)
    assert t.is_alive(), f"finished while the endpoint was down: {outcome}"
    s3_server.start()
    t.join(60)
    assert not t.is_alive() and "error" not in outcome, outcome
    assert outcome["read"] == {"written": "before"}
    got = {v.video_id: v for v in Corpus.open(uri).videos()}
    assert sorted(got) == [v.video_id for v in videos]
    for v in videos:
        np.testing.assert_array_equal(got[v.video_id].features, v.features)


def test_an_endpoint_that_stays_down_fails_with_a_storage_error(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv(storage.RETRY_SECONDS_ENV, "2")
    monkeypatch.setenv(storage.ATTEMPTS_ENV, "1")
    monkeypatch.setenv(storage.CONNECT_TIMEOUT_ENV, "1")
    uri = f"s3://{s3_bucket}/results/results.json"
    fs, path = storage.filesystem(uri)
    s3_server.stop()
    try:
        t0 = time.monotonic()
        with pytest.raises(StorageError, match=rf"^{uri}: endpoint unreachable after \d+ attempts .*write"):
            storage.write_json_atomic(fs, path, {"auc": 0.5})
        with pytest.raises(StorageError, match=rf"^{uri}: endpoint unreachable after \d+ attempts .*read"):
            storage.read_json(fs, path)
        assert time.monotonic() - t0 < 20
    finally:
        s3_server.start()
    storage.write_json_atomic(fs, path, {"auc": 0.5})  # and it works again once the endpoint is back
    assert storage.read_json(fs, path) == {"auc": 0.5}


# --------------------------------------------------------------------------------------------------
# Ray: train from S3, checkpoint to S3, evaluate from S3, resume from S3


@pytest.fixture(scope="module")
def ray_s3(s3_server, tmp_path_factory):
    """AWS environment set BEFORE ray.init (workers inherit it), a bucket, and a corpus in it."""
    import ray

    from omnivad.corpus.synth import SynthConfig, synthesize
    from omnivad.data.ray_datasets import quiet_progress

    with pytest.MonkeyPatch.context() as mp:
        for k, v in s3_server.env().items():
            mp.setenv(k, v)
        bucket = s3_server.new_bucket()
        local = str(tmp_path_factory.mktemp("s3ray") / "corpus")
        synthesize(local, SynthConfig(domains=2, videos_per_domain=16, test_videos_per_domain=6, dim=16, seed=1))
        fs, root = storage.filesystem(f"s3://{bucket}/corpus")
        fs.put(local.rstrip("/") + "/", root + "/", recursive=True)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        quiet_progress()
        try:
            yield bucket, f"s3://{bucket}/corpus"
        finally:
            ray.shutdown()


def _fit(corpus_uri: str, out: str, step_hooks: list | None = None) -> str:
    from omnivad import config
    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.engine.spec import RunSpec
    from omnivad.engine.trainer import fit

    cfg = config.load(overrides=[
        f"corpus.uri={corpus_uri}", f"storage.out={out}", "train.steps=6", "train.eval_every=2",
        "train.checkpoint_every=2", "data.batch_per_class=6", "benchmark.folds=1", "train.lr=1e-3",
        "model.method=nullang-mil", "train.max_failures=0",  # the driver-rerun resume path
    ])
    corpus = Corpus.open(corpus_uri)
    split = protocol_splits(build_benchmark(corpus, cfg.benchmark, corpus.domains), "E1", 0)
    spec = RunSpec(name="run", corpus_uri=corpus_uri, train=split.train, val=split.val,
                   head_domains=corpus.domains, steps=6, seed=0)
    return fit(cfg, spec, step_hooks=step_hooks)


@pytest.mark.ray
def test_train_checkpoint_evaluate_and_resume_on_s3(ray_s3, s3_server, monkeypatch):
    from omnivad.engine import checkpoint as ckpt
    from omnivad.engine.evaluate import evaluate_model
    from tests.faults import kill_at

    bucket, corpus_uri = ray_s3
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    corpus = Corpus.open(corpus_uri)
    assert len(corpus.domains) == 2

    straight = _fit(corpus_uri, f"s3://{bucket}/runs/straight")
    assert straight == f"s3://{bucket}/runs/straight/run/model.pt"
    keys = s3_server.keys(bucket, "runs/straight/")
    assert "runs/straight/run/model.pt" in keys and "runs/straight/run/history.json" in keys
    assert any("/step-00000006/" in k for k in keys), keys  # Ray Train checkpoints live in the bucket
    metrics = evaluate_model(straight, corpus, corpus.domains)
    assert sorted(metrics["per_domain"]) == sorted(corpus.domains) and 0.0 <= metrics["mean_auc"] <= 1.0

    killed = f"s3://{bucket}/runs/killed"
    with pytest.raises(Exception):
        _fit(corpus_uri, killed, step_hooks=kill_at(3))  # the worker dies right after step 3
    assert "runs/killed/run/model.pt" not in s3_server.keys(bucket, "runs/killed/")
    assert any("/step-00000002/" in k for k in s3_server.keys(bucket, "runs/killed/"))
    resumed = _fit(corpus_uri, killed)  # restarts from the step-2 checkpoint in the bucket

    a, b = ckpt.read_model(straight), ckpt.read_model(resumed)
    assert [h["step"] for h in b["history"]] == [2, 4, 6]
    assert a["selected"] == b["selected"]
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b["model"][k]), k
    assert evaluate_model(resumed, corpus, corpus.domains)["mean_auc"] == metrics["mean_auc"]
