"""Per-snippet side signals (``side_flow`` (T,), ``side_objects`` (T, W)): corpus format, validation, the
``corpus add-side`` importer, the synthetic generator, and the path into training batches (local pools, the Ray
Data resampling function, worker pools, balanced batches)."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from omnivad import config
from omnivad.cli import main
from omnivad.corpus.format import SCHEMA, Corpus, Video, write_videos
from omnivad.corpus.importers import add_side_signals
from omnivad.corpus.synth import SynthConfig, generate, read_truth, synthesize
from omnivad.data.balanced import BalancedBatcher
from omnivad.data.ray_datasets import _Resample, collect_pools, resample_segments
from omnivad.engine.local import local_pools
from omnivad.engine.spec import RunSpec
from omnivad.errors import CorpusError


def _video(vid: str, t: int, label: int = 0, side: dict | None = None, split: str = "train") -> Video:
    rng = np.random.default_rng(abs(hash(vid)) % 2**32)
    return Video(vid, "dom", split, label, rng.normal(size=(t, 2, 4)).astype(np.float32), side=side or {})


def test_round_trip_and_plain_corpus_unchanged(tmp_path):
    flow = np.arange(5, dtype=np.float32)
    objects = np.arange(15, dtype=np.float32).reshape(5, 3) / 15
    uri = str(tmp_path / "c")
    m = write_videos(uri, [_video("a", 5, 1, {"flow": flow, "objects": objects}),
                           _video("b", 3, 0, {"flow": np.ones(3), "objects": np.zeros((3, 3))})], feature_dim=4)
    assert m.domains["dom"].splits["train"].side == {"flow": 1, "objects": 3}
    c = Corpus.open(uri)
    assert c.side_signals("dom", "train") == {"flow": 1, "objects": 3} and c.side_signals("dom", "test") == {}
    vids = {v.video_id: v for v in c.videos()}
    np.testing.assert_array_equal(vids["a"].side["flow"], flow)
    np.testing.assert_array_equal(vids["a"].side["objects"], objects)
    assert vids["b"].side["objects"].shape == (3, 3) and vids["b"].side["flow"].dtype == np.float32
    # a corpus without side signals keeps the plain schema (files as before side signals existed)
    plain = str(tmp_path / "plain")
    write_videos(plain, [_video("a", 5), _video("b", 3)], feature_dim=4)
    pc = Corpus.open(plain)
    assert pq.read_schema(pc.part_paths()[0]).names == SCHEMA.names
    assert all(v.side == {} for v in pc.videos()) and pc.side_signals("dom", "train") == {}
    # another split without side signals next to one with them: tables still concatenate
    write_videos(uri, [_video("t", 4, split="test")], feature_dim=4)
    assert Corpus.open(uri).table().num_rows == 3


@pytest.mark.parametrize(
    "side, match",
    [
        ({"flow": np.ones(4)}, r"video 'x': side signal 'flow': shape \(4,\), expected \(T,\) with T = 5"),
        ({"objects": np.ones(5)}, r"'objects': shape \(5,\), expected \(T, W\)"),
        ({"flow": np.array([0, np.nan, 0, 0, 0])}, "NaN or infinite"),
        ({"speed": np.ones(5)}, "side signal 'speed': unknown"),
        ({"flow": np.array(["a"] * 5)}, "expected real numbers"),
    ],
)
def test_invalid_side_signals_name_the_video_and_field(tmp_path, side, match):
    with pytest.raises(CorpusError, match=match):
        write_videos(str(tmp_path / "c"), [_video("x", 5, side=side)], feature_dim=4)
    assert not (tmp_path / "c").exists()


def test_a_split_has_the_same_side_signals_for_every_video(tmp_path):
    uri = str(tmp_path / "c")
    with pytest.raises(CorpusError, match="video 'b': no side signal 'flow'"):
        write_videos(uri, [_video("a", 3, side={"flow": np.ones(3)}), _video("b", 3)], feature_dim=4)
    with pytest.raises(CorpusError, match="video 'b': side signal 'objects' has width 2"):
        write_videos(uri, [_video("a", 3, side={"objects": np.ones((3, 4))}),
                           _video("b", 3, side={"objects": np.ones((3, 2))})], feature_dim=4)
    write_videos(uri, [_video("a", 3, side={"flow": np.ones(3)})], feature_dim=4)
    before = (tmp_path / "c" / "manifest.json").read_bytes()
    with pytest.raises(CorpusError, match=r"split 'train': video 'b' has side signals none.*\{'flow': 1\}.*add-side"):
        write_videos(uri, [_video("b", 3)], feature_dim=4)
    assert (tmp_path / "c" / "manifest.json").read_bytes() == before


def _side_dirs(tmp_path, corpus: Corpus, split: str, width: int = 3) -> tuple[str, str, dict]:
    flow_dir, obj_dir = tmp_path / "flow", tmp_path / "objects"
    flow_dir.mkdir(exist_ok=True)
    obj_dir.mkdir(exist_ok=True)
    expect = {}
    for v in corpus.videos(split=split):
        f = np.linspace(0, 1, v.n_snippets, dtype=np.float32) * (1 + v.label)
        o = np.full((v.n_snippets, width), 0.25, np.float32)
        np.save(flow_dir / f"{v.video_id}.npy", f[:, None])  # (T, 1) is accepted for flow
        np.save(obj_dir / f"{v.video_id}.npy", o)
        expect[v.video_id] = (f, o)
    return str(flow_dir), str(obj_dir), expect


def test_add_side_command_rewrites_the_split(tmp_path, capsys):
    uri = str(tmp_path / "corpus")
    synthesize(uri, SynthConfig(domains=2, videos_per_domain=6, test_videos_per_domain=2, dim=4, seed=1))
    corpus = Corpus.open(uri)
    old_train = corpus.part_paths("campus", "train")
    test_parts = corpus.part_paths("campus", "test")
    fp = corpus.fingerprint()
    before = {v.video_id: v for v in corpus.videos("campus", "train")}
    flow_dir, obj_dir, expect = _side_dirs(tmp_path, corpus, "train")
    code = main(["corpus", "add-side", "--corpus", uri, "--domain", "campus", "--split", "train",
                 "--flow", flow_dir, "--objects", obj_dir, "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "campus/train: 6 videos, side signals {'flow': 1, 'objects': 3}" in capsys.readouterr().out
    after = Corpus.open(uri)
    assert after.fingerprint() != fp
    assert after.side_signals("campus", "train") == {"flow": 1, "objects": 3}
    assert after.side_signals("campus", "test") == {} and after.part_paths("campus", "test") == test_parts
    assert not any(os.path.exists(p) for p in old_train)  # old parts deleted after the commit
    for v in after.videos("campus", "train"):
        np.testing.assert_array_equal(v.features, before[v.video_id].features)
        np.testing.assert_array_equal(v.side["flow"], expect[v.video_id][0])
        np.testing.assert_array_equal(v.side["objects"], expect[v.video_id][1])
    assert after.manifest.domains["campus"].splits["train"].videos == 6


def test_add_side_errors_leave_the_corpus_untouched(tmp_path):
    uri = str(tmp_path / "corpus")
    synthesize(uri, SynthConfig(domains=1, videos_per_domain=4, test_videos_per_domain=0, dim=4, seed=1))
    corpus = Corpus.open(uri)
    manifest = (tmp_path / "corpus" / "manifest.json").read_bytes()
    flow_dir, _, _ = _side_dirs(tmp_path, corpus, "train")
    vids = sorted(v.video_id for v in corpus.videos())
    np.save(os.path.join(flow_dir, f"{vids[1]}.npy"), np.ones(2, np.float32))
    with pytest.raises(CorpusError, match=rf"{vids[1]}\.npy: video '{vids[1]}': side signal 'flow': shape \(2,\)"):
        add_side_signals(uri, "campus", {"flow": flow_dir}, progress=False)
    np.save(os.path.join(flow_dir, f"{vids[1]}.npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CorpusError, match=rf"{vids[1]}\.npy: cannot load"):  # never unpickled
        add_side_signals(uri, "campus", {"flow": flow_dir}, progress=False)
    os.remove(os.path.join(flow_dir, f"{vids[1]}.npy"))
    with pytest.raises(CorpusError, match=rf"{vids[1]}\.npy: not found \(side signal 'flow' of video '{vids[1]}'"):
        add_side_signals(uri, "campus", {"flow": flow_dir}, progress=False)
    with pytest.raises(CorpusError, match="no split 'test'"):
        add_side_signals(uri, "campus", {"flow": flow_dir}, splits=["test"], progress=False)
    assert (tmp_path / "corpus" / "manifest.json").read_bytes() == manifest
    assert main(["corpus", "add-side", "--corpus", uri, "--domain", "campus"]) == 1  # neither --flow nor --objects


def test_synthetic_side_signals_follow_the_planted_events(tmp_path):
    cfg = SynthConfig(domains=2, videos_per_domain=8, test_videos_per_domain=0, dim=6, side_signals=True,
                      object_classes=10, n_activities=2, seed=3)
    uri = str(tmp_path / "c")
    synthesize(uri, cfg)
    truth = read_truth(uri)
    plain = {v.video_id: v for v in generate(cfg.model_copy(update={"side_signals": False}))}
    inside, outside = [], []
    for v in Corpus.open(uri).videos():
        np.testing.assert_array_equal(v.features, plain[v.video_id].features)  # same features with or without
        assert v.side["objects"].shape == (v.n_snippets, 10)
        mask = np.zeros(v.n_snippets, bool)
        for p in truth["planted"][v.domain]["train"]:
            if p["video_id"] == v.video_id:
                mask[p["start"] : p["end"]] = True
                ev = int(p["event"][1:])
                assert np.all(v.side["objects"][mask, (2 + ev) % 10] == np.float32(0.9))
        inside.extend(v.side["flow"][mask])
        outside.extend(v.side["flow"][~mask])
    assert min(inside) > max(outside) - 0.5 and np.mean(inside) > np.mean(outside) + 0.9


def test_side_signals_reach_the_batches(tmp_path):
    uri = str(tmp_path / "c")
    synthesize(uri, SynthConfig(domains=2, videos_per_domain=6, test_videos_per_domain=0, dim=4, crops=2,
                                side_signals=True, object_classes=3, seed=4))
    corpus = Corpus.open(uri)
    cfg = config.load(overrides=["data.segments=8", "data.batch_per_class=4"])
    train = {d: [r["video_id"] for r in corpus.index(d, "train")] for d in corpus.domains}
    pools = local_pools(corpus, RunSpec(name="s", corpus_uri=uri, train=train, head_domains=corpus.domains, steps=1), cfg)
    videos = {v.video_id: v for v in corpus.videos()}
    for (_d, _y), pool in pools.items():
        assert pool.side["flow"].shape == (len(pool.ids), 8) and pool.side["objects"].shape == (len(pool.ids), 8, 3)
        for i, vid in enumerate(pool.ids):
            np.testing.assert_allclose(pool.side["flow"][i], resample_segments(videos[vid].side["flow"], 8))
    # the Ray Data map function and the worker's pool collection carry them too (no Ray needed to call them)
    table = corpus.table("campus", "train")
    out = _Resample(None, 4, 8, "mean", corpus.side_signals("campus", "train"))(table)
    assert out["side_flow"].shape == (6, 8) and out["side_objects"].shape == (6, 8, 3)

    class Shard:
        def iter_batches(self, **_kw):
            yield out

    ray_pools = collect_pools(Shard(), "campus")
    for y in (0, 1):
        assert ray_pools[("campus", y)].ids == pools[("campus", y)].ids
        np.testing.assert_allclose(ray_pools[("campus", y)].side["objects"], pools[("campus", y)].side["objects"])
    # balanced batches: each row's side signals are those of the video in that row
    batcher = BalancedBatcher(pools, corpus.domains, {d: i for i, d in enumerate(corpus.domains)}, 4, seed=0)
    for step in range(3):
        b = batcher.batch(step)
        assert b.side["flow"].shape == (8, 8) and b.side["objects"].shape == (8, 8, 3)
        for r in range(8):
            match = [(k, i) for k, p in pools.items() for i in range(len(p.ids))
                     if np.array_equal(p.x[i].transpose(1, 0, 2), b.x[r].numpy())]
            assert len(match) == 1
            (key, i), = match
            np.testing.assert_array_equal(b.side["flow"][r].numpy(), pools[key].side["flow"][i])
    moved = b.to("cpu")
    assert set(moved.side) == {"flow", "objects"} and torch.equal(moved.side["flow"], b.side["flow"])
    # a pool without side signals: the batch carries none (the method then runs with those terms off)
    pools[("campus", 0)].side = {}
    assert BalancedBatcher(pools, corpus.domains, {d: 0 for d in corpus.domains}, 4, seed=0).batch(0).side is None
    json.dumps(corpus.manifest.model_dump())  # the manifest stays plain JSON

