"""CLAV + CoMo (``model.method=como``, trunk ``como``; spec ``clav_como.md``): shapes, parameter counts, the
losses against hand computations, the side-signal terms on and off, the test score, and learning on synthetic
corpora (single domain, E1 with one shared head, E1 as the trunk under NullAng-MIL heads)."""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from omnivad import config
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.engine.local import train_local
from omnivad.engine.spec import RunSpec
from omnivad.errors import ConfigError
from omnivad.methods.base import Batch
from omnivad.methods.como import CLAVCoMoNet, CoMoTrunk, build_net
from omnivad.methods.como.loss import mil_loss, normal_compactness, relative_distance_loss
from omnivad.methods.como.model import ica
from omnivad.methods.registry import get_method
from omnivad.methods.trunks import build_trunk
from omnivad.metrics import evaluate_domain
from omnivad.protocols import protocol_splits

D = 16


def _cfg(*overrides: str) -> config.Config:
    return config.load(overrides=["model.method=como", "como.object_classes=5", *overrides])


def _batch(side: bool, b: int = 8, k: int = 2, t: int = 8, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, k, t, D, generator=g)
    mask = torch.ones(b, k, dtype=torch.bool)
    mask[0, 1] = False
    y = torch.tensor([0.0] * (b // 2) + [1.0] * (b // 2))
    s = {"flow": torch.rand(b, t, generator=g), "objects": torch.rand(b, t, 5, generator=g)} if side else None
    return Batch(x, mask, y, torch.zeros(b, dtype=torch.long), s)


# ---------------------------------------------------------------------------------------------- model
def test_shapes_and_context_selection():
    torch.manual_seed(0)
    net = build_net(_cfg(), ["a", "b"], D)
    for t, nc in ((16, 12), (8, 6), (37, 29), (1, 1)):  # N = int(0.8·T), at least 1 (§8.17)
        with torch.no_grad():
            out = net(torch.randn(3, t, D))
        assert out["feat"].shape == (3, t, D) and out["emb"].shape == (3, t, 128)
        assert out["s"].shape == out["s_r"].shape == out["s_int"].shape == (3, t)
        assert out["ctx_idx"].shape == (3, nc) and out["h_ctx"].shape == (3, nc, D)
        assert out["f_r"].shape == (3, t, 128) and out["s_obj"].shape == (3, nc, 5)
        for key in ("s", "s_r", "s_int", "s_obj"):
            assert float(out[key].min()) >= 0 and float(out[key].max()) <= 1
        # the context path takes the N lowest predicted intensities, in temporal order
        idx = out["ctx_idx"]
        assert bool((idx[:, 1:] > idx[:, :-1]).all())
        low = out["s_int"].topk(nc, dim=1, largest=False).indices.sort(dim=1).values
        assert torch.equal(idx, low)
    net.eval()
    assert "s_obj" not in net(torch.randn(2, 8, D))  # the object classifier is training-only
    # ICA is a Max-Feature-Map over the Conv1D's two channel halves (Eq. 1-3)
    x = torch.randn(2, 8, D)
    y = net.como.ica_conv(x.transpose(1, 2)).transpose(1, 2)
    assert torch.equal(ica(net.como.ica_conv, x), torch.maximum(y[..., :D], y[..., D:]))
    for opt in (["como.context_nodes=own-projection"], ["como.fusion=states"], ["como.ica_kernel=1"]):
        alt = build_net(_cfg(*opt), ["a"], D)
        assert alt(torch.randn(2, 8, D))["s_r"].shape == (2, 8)


def test_parameter_counts_at_paper_size():
    """D = 2048 (I3D ResNet-50), C = 80, n = 32, st = 128, d = 128, FC 512 (§2, §4), counted by hand."""
    d, c, n, st = 2048, 80, 32, 128
    ica_p = 3 * d * 2 * d + 2 * d
    dynamic = (d * 512 + 512) + (512 + 1)
    context = 3 * d * d + d
    graph = (d * n + n) + (d * st + st) + (d * st + st) + 2 * (n * n + n + st * st) + (2 * n * n + n) + st * st
    head = (d * 512 + 512) + (512 * 128 + 128) + (128 + 1) + (st + 1)
    decoders = 2 * ((128 * 512 + 512) + (512 * d + d))
    objects = (d * 512 + 512) + (512 * c + c)
    with torch.device("meta"):
        net = build_net(config.load(), ["a"], d)
        trunk = build_trunk("como", config.load(), d)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net.como) == count(trunk) == ica_p + dynamic + context + graph == 39_447_937
    assert count(net) == ica_p + dynamic + context + graph + head + decoders + objects == 43_886_419
    test_time = count(net) - count(net.csn) - count(net.csa) - count(net.obj_head)
    assert test_time == 40_562_947  # what §3.5 keeps at test time
    assert isinstance(trunk, CoMoTrunk) and trunk.out_dim == d + st


# ---------------------------------------------------------------------------------------------- losses
def test_normal_compactness_and_relative_distance_by_hand():
    f = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    cos = F.cosine_similarity(f[:, None], f[None], dim=-1)
    assert math.isclose(float(normal_compactness(f)), float(cos.sum()) / 9, rel_tol=1e-6)
    # one normal and one abnormal video, one crop, T = 3, top-1 indices
    fa = torch.tensor([[0.0, 1.0], [-1.0, 0.5], [3.0, 0.0]])
    feats = torch.stack([f, fa]).unsqueeze(1)  # (B=2, K=1, T, D)
    idx = torch.tensor([[1], [2]])
    c_n = float(cos.sum()) / 9
    c_top = float(F.cosine_similarity(f[1], fa[2], dim=0))  # = 0
    expect = max(c_top + 0.3 - c_n, 0.0) + (1 - c_n)
    got = relative_distance_loss(feats, idx, torch.tensor([True, False]), torch.tensor([False, True]),
                                 torch.ones(2, 1, dtype=torch.bool), 0.3)
    assert math.isclose(float(got), expect, rel_tol=1e-6)
    allp = relative_distance_loss(feats, idx, torch.tensor([True, False]), torch.tensor([False, True]),
                                  torch.ones(2, 1, dtype=torch.bool), 0.3, "all")
    assert math.isclose(float(allp), expect, rel_tol=1e-6)  # one pair: both readings agree


def test_mil_loss_by_hand():
    s = torch.tensor([[0.9, 0.1, 0.6], [0.2, 0.3, 0.1]])
    s_r = torch.tensor([[0.5, 0.7, 0.2], [0.4, 0.1, 0.2]])
    y = torch.tensor([1.0, 0.0])
    # K = 2: video 0 takes {0.9, 0.6} and {0.7, 0.5}; video 1 takes {0.3, 0.2} and {0.4, 0.2}
    v0 = -(math.log(0.9) + math.log(0.6) + math.log(0.7) + math.log(0.5)) / 4
    v1 = -(math.log(0.7) + math.log(0.8) + math.log(0.6) + math.log(0.8)) / 4
    assert math.isclose(float(mil_loss(s, s_r, y, 2)), (v0 + v1) / 2, rel_tol=1e-5)
    m0 = -(math.log(0.75) + math.log(0.6)) / 2
    m1 = -(math.log(0.75) + math.log(0.7)) / 2
    assert math.isclose(float(mil_loss(s, s_r, y, 2, "mean")), (m0 + m1) / 2, rel_tol=1e-5)


def test_side_signal_terms_on_and_off(caplog, monkeypatch):
    from omnivad.methods.como import loss as como_loss

    monkeypatch.setattr(como_loss, "_SAID", set())  # "said once per process": another test may have said it already
    method = get_method("como")
    cfg = _cfg()
    torch.manual_seed(0)
    net = method.build(cfg, ["a"], D)
    loss, logs = method.loss(net, _batch(side=True), cfg)
    loss.backward()
    assert logs["int_on"] == logs["obj_on"] == 1.0 and logs["int"] > 0 and logs["obj"] > 0
    assert float(net.como.dyn1.weight.grad.abs().sum()) > 0 and net.obj_head[0].weight.grad is not None
    g = net.como.ica_conv.weight.grad  # (2D, D, k): the max routes gradient to both halves' winners (§7)
    assert float(g[:D].abs().sum()) > 0 and float(g[D:].abs().sum()) > 0
    # without side signals: both terms off, said in the log and the loss logs; the dynamic path then gets no
    # gradient (the bottom-N choice is hard) and the object classifier is not run
    net.zero_grad(set_to_none=True)
    with caplog.at_level(logging.WARNING, logger="omnivad.como"):
        loss, logs = method.loss(net, _batch(side=False), cfg)
    loss.backward()
    assert logs["int_on"] == logs["obj_on"] == 0.0 and logs["int"] == logs["obj"] == 0.0
    assert "no side_flow (motion intensity) — L_int is off" in caplog.text
    assert "no side_objects (object classes) — L_obj is off" in caplog.text
    assert net.como.dyn1.weight.grad is None and net.obj_head[0].weight.grad is None
    assert float(net.como.ica_conv.weight.grad.abs().sum()) > 0
    off = _cfg("como.side_signals=ignore")
    _, logs = method.loss(net, _batch(side=True), off)
    assert logs["int_on"] == 0.0
    with pytest.raises(ValueError, match="como.object_classes is 5, the batch's side_objects have 7 classes"):
        bad = _batch(side=True)
        bad.side["objects"] = torch.rand(8, 8, 7)
        method.loss(net, bad, cfg)
    with pytest.raises(ConfigError, match="como.side_signals"):
        _cfg("como.side_signals=maybe")


def test_test_score_fuses_both_streams():
    method = get_method("como")
    torch.manual_seed(1)
    net = method.build(_cfg("como.alpha=0.25"), ["ST", "b"], D)
    x = torch.randn(3, 20, D)
    net.eval()
    with torch.no_grad():
        out = net(x)
    for target, a in (("ST", 0.4), ("b", 0.25), (None, 0.25)):  # α of ST from como.alpha_domains (§4)
        expect = (out["s"] + a * out["s_r"]).mean(0) / (1 + a)
        torch.testing.assert_close(method.score(net, x, target), expect)
    assert net.training is False
    assert method.score(net, x[0], "b").shape == (20,)
    # a checkpoint rebuilds the same model
    fresh = method.build(_cfg("como.alpha=0.25"), ["other"], D)
    fresh.load_state_dict(net.state_dict())
    assert fresh.domains == ["ST", "b"]
    torch.testing.assert_close(method.score(fresh, x, "b"), method.score(net, x, "b"))


# ---------------------------------------------------------------------------------------------- learning
SEED = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))  # corpus and training seed (tests/margins.py sweeps it)
STEPS = 300  # CoMo's own learning runs
COMMON = ["train.lr=1e-3", "data.batch_per_class=6", "data.segments=16", "benchmark.folds=1",
          "benchmark.val_fraction=0", "como.object_classes=8"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("como") / "corpus")
    synthesize(uri, SynthConfig(domains=3, videos_per_domain=40, test_videos_per_domain=12, dim=16, min_snippets=16,
                                max_snippets=40, conflict_strength=0.0, event_norm=3.0, scene_shift=0.5,
                                side_signals=True, object_classes=8, seed=SEED))
    corpus = Corpus.open(uri)
    bench = build_benchmark(corpus, config.load(overrides=COMMON).benchmark, corpus.domains)
    return corpus, protocol_splits(bench, "E1", 0, None)


def _train_and_score(world, steps: int, train_domains: list[str], *overrides: str):
    corpus, split = world
    cfg = config.load(overrides=[*COMMON, *overrides])
    logs: list[dict[str, float]] = []
    spec = RunSpec(name="como", corpus_uri=corpus.uri, train={d: split.train[d] for d in train_domains},
                   head_domains=train_domains, steps=steps, seed=SEED)
    method, model = train_local(cfg, spec, on_step=lambda step, lg, batch: logs.append(dict(lg)))
    aucs = {}
    for d in train_domains:
        vids = sorted(corpus.videos(d, "test"), key=lambda v: v.video_id)
        scores = {v.video_id: method.score(model, torch.from_numpy(v.features.transpose(1, 0, 2).copy()), d).numpy()
                  for v in vids}
        aucs[d] = float(evaluate_domain([(v.video_id, v.gt, v.label) for v in vids], scores, d)["auc"])
    return aucs, logs


@pytest.mark.learning
def test_learns_single_domain(world, claim):
    """The loss logs say the side-signal terms were on. 300 steps: at 150, OMNIVAD_TEST_SEED=3 reached only 0.61 AUC
    (E1: 0.46 / 0.73 / 0.61), undertrained rather than broken (0.87 at 300 steps; tests/README.md)."""
    aucs, logs = _train_and_score(world, STEPS, ["campus"], "model.method=como")
    print(f"como single-domain AUC {aucs}")
    assert all(lg["int_on"] == 1.0 and lg["obj_on"] == 1.0 for lg in logs)
    claim("intention loss: last-20 − first-20 mean", np.mean([lg["int"] for lg in logs[-20:]])
          - np.mean([lg["int"] for lg in logs[:20]]), "<", 0.0)
    claim("campus AUC", aucs["campus"], ">", 0.72)


@pytest.mark.learning
def test_learns_multi_domain_e1(world, claim):
    """E1 over three domains, one shared head."""
    aucs, logs = _train_and_score(world, STEPS, world[0].domains, "model.method=como")
    print(f"como E1 AUC {aucs}")
    claim("MIL loss: last-20 − first-20 mean", np.mean([lg["mil"] for lg in logs[-20:]])
          - np.mean([lg["mil"] for lg in logs[:20]]), "<", -0.05)
    claim("mean AUC", np.mean(list(aucs.values())), ">", 0.72, str(aucs))
    claim("min domain AUC", min(aucs.values()), ">", 0.6, str(aucs))


@pytest.mark.learning
def test_como_trunk_under_nullang_heads_learns_e1(world, claim):
    """``model.method=nullang-mil model.trunk=como``: the CoMo trunk under one NullAng head per domain."""
    aucs, _ = _train_and_score(world, 150, world[0].domains, "model.method=nullang-mil", "mdvad.trunk=como",
                               "mdvad.ac=false")
    print(f"nullang-mil + como trunk E1 AUC {aucs}")
    claim("mean AUC", np.mean(list(aucs.values())), ">", 0.72, str(aucs))
    claim("min domain AUC", min(aucs.values()), ">", 0.6, str(aucs))


def test_method_registered_and_model_type_checked():
    method = get_method("como")
    with pytest.raises(ValueError, match="expects a CLAVCoMoNet"):
        method.score(torch.nn.Linear(2, 2), torch.randn(1, 4, 2), None)
    assert isinstance(method.build(_cfg(), ["a"], D), CLAVCoMoNet)
