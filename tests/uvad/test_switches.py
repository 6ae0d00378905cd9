"""wOCC–WS ablation switches (spec wocc_ws.md Table 4, §7, §3.3): ``uvad.occ_labels=hard`` (plain OCC on hard
labels), ``uvad.threshold=fixed`` (T = ⌈Q·N⌉ in every module) and ``uvad.ws_input=crops|mean`` (the WS model on
every crop of a bag, the default, or on crop means). Small numpy/torch pieces and a fake executor: no Ray."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnivad import config
from omnivad.uvad import thresholds as th
from omnivad.uvad.data import Objects, SnippetSet, snippet_objects
from omnivad.uvad.interleave import DomainData, _load_or_start, hard_object_weights, occ_labels, run_domain
from omnivad.uvad.occ import weighted_occ_loss
from omnivad.uvad.train import score_videos, ws_iterations
from omnivad.uvad.ws import RTFM, build_ws, rtfm_loss


def _uvad(*extra: str):
    return config.load(overrides=list(extra)).uvad


def _snippets(n: int = 40, c: int = 4, k: int | None = None, seed: int = 0) -> SnippetSet:
    rng = np.random.default_rng(seed)
    crops = rng.standard_normal((n, k, c)).astype(np.float32) if k else None
    x = crops.mean(1) if crops is not None else rng.standard_normal((n, c)).astype(np.float32)
    return SnippetSet(x, ["a", "b"], np.array([0, n // 2, n]), crops)


def test_defaults_follow_the_spec_reading() -> None:
    u = _uvad()
    assert (u.occ_labels, u.threshold, u.ws_input) == ("soft", "adaptive", "crops")
    with pytest.raises(Exception, match="uvad.threshold"):
        _uvad("uvad.threshold=sometimes")


# ---------------------------------------------------------------------------------------------- occ_labels
def test_hard_occ_labels_threshold_the_ws_scores_at_the_top_q() -> None:
    s = np.linspace(0.0, 1.0, 20)
    objects = snippet_objects(_snippets(20))
    soft = occ_labels(_uvad("uvad.q=0.15"), objects, s)
    assert np.allclose(soft, s)  # Eq. 6: w = s
    hard = occ_labels(_uvad("uvad.q=0.15", "uvad.occ_labels=hard"), objects, s)
    assert set(np.unique(hard)) == {0.0, 1.0} and hard.sum() == 3  # ⌈0.15·20⌉ objects abnormal
    assert hard[-3:].tolist() == [1.0, 1.0, 1.0]  # the highest WS scores
    # pose-like objects covering snippet ranges: abnormal when any covered snippet is in the top Q
    pose = Objects(np.zeros((3, 1)), lo=np.array([0, 16, 5]), hi=np.array([2, 18, 19]), score_x=np.zeros((3, 1)),
                   kind="pose")
    assert occ_labels(_uvad("uvad.q=0.15", "uvad.occ_labels=hard"), pose, s).tolist() == [0.0, 1.0, 1.0]


def test_hard_labels_make_the_occ_loss_the_plain_one_class_loss_on_normal_objects() -> None:
    nll = torch.tensor([1.0, 2.0, 3.0, 4.0])
    w = torch.from_numpy(hard_object_weights(_uvad("uvad.q=0.25"), np.array([0.1, 0.9, 0.2, 0.3], np.float32)))
    assert w.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert weighted_occ_loss(nll, w).item() == pytest.approx((1 + 3 + 4) / 3)  # Eq. 1 over the normal ones
    soft = torch.tensor([0.1, 0.9, 0.2, 0.3])
    assert weighted_occ_loss(nll, soft).item() != pytest.approx((1 + 3 + 4) / 3)


def test_module_one_starts_from_hard_beta_draws_with_hard_labels() -> None:
    dd = DomainData("d", _snippets(40), snippet_objects(_snippets(40)))
    _, soft = _load_or_start(_Nowhere(), dd, _uvad(), 6, "mem")
    _, hard = _load_or_start(_Nowhere(), dd, _uvad("uvad.occ_labels=hard"), 6, "mem")
    w_soft, w_hard = soft["w"].numpy(), hard["w"].numpy()
    assert len(np.unique(w_soft)) > 2  # Beta(1,5) draws
    assert set(np.unique(w_hard)) == {0.0, 1.0} and w_hard.sum() == th.initial_threshold(0.15, 40)
    assert (w_soft[w_hard == 1].min() >= w_soft[w_hard == 0].max())  # the same draws, thresholded at the Q quantile


class _Nowhere:
    def load(self):
        return None, None


# ---------------------------------------------------------------------------------------------- threshold
class _FakeExecutor:
    """Random wOCC/WS scores (a fresh draw each call): the top-Q sets differ from loop to loop."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.abnormal: list[int] = []

    def train_occ(self, dd, state, w, init_seed, seed, tag):
        return {}, [1.0]

    def score_occ(self, dd, state, objects, tag):
        return self.rng.random(len(objects.score_x))

    def train_ws(self, dd, state, labels, ahat, init_seed, seed, tag):
        self.abnormal.append(int(labels.sum()))
        return {}, [1.0]

    def score_ws(self, dd, state, snippets, tag):
        return self.rng.random(snippets.n)


@pytest.mark.parametrize("mode", ["adaptive", "fixed"])
def test_fixed_threshold_keeps_t1_in_every_module(tmp_path, mode: str) -> None:
    cfg = _uvad(f"uvad.threshold={mode}", "uvad.q=0.3", "uvad.loops=2", "uvad.max_modules=3", "uvad.cleanup=false",
                "uvad.stop_ratio=0")
    snippets = _snippets(100)
    ex = _FakeExecutor()
    state = run_domain(DomainData("d", snippets, snippet_objects(snippets)), cfg, ex, str(tmp_path / mode),
                       log=lambda m: None)
    t1 = th.initial_threshold(0.3, 100)
    ts = [m["T"] for m in state["modules"]]
    assert len(ts) == 3 and ts[0] == t1
    if mode == "fixed":
        assert ts == [t1] * 3 and all(m["T_next"] == t1 for m in state["modules"])
        assert ex.abnormal == [t1] * 6  # every loop's WS gets ⌈Q·N⌉ pseudo-abnormal snippets
    else:
        assert ts[1] < t1 and ts[2] <= ts[1]  # Eq. 8: the intersection shrinks T
        assert ex.abnormal[2:] == [ts[1], ts[1], ts[2], ts[2]]
    assert all(m["intersection"] < t1 for m in state["modules"][1:])  # the intersections are recorded either way


# ---------------------------------------------------------------------------------------------- ws_input
def _rtfm_cfg():
    return _uvad("uvad.rtfm_k=2", "uvad.dropout=0.0")


def test_rtfm_loss_on_one_crop_equals_the_crop_mean_input() -> None:
    torch.manual_seed(0)
    model = RTFM(8, 16, 0.0).eval()
    pos, neg = torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    a, _ = rtfm_loss(model, pos, neg, _rtfm_cfg())
    b, _ = rtfm_loss(model, pos[:, None], neg[:, None], _rtfm_cfg())
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_rtfm_loss_on_crops_runs_every_crop_and_differs_from_the_crop_mean() -> None:
    torch.manual_seed(0)
    model = RTFM(8, 16, 0.0).eval()
    pos, neg = torch.randn(3, 4, 6, 8) * 3, torch.randn(3, 4, 6, 8)  # (B, K, L, C)
    seen = []
    model.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    crops, _ = rtfm_loss(model, pos, neg, _rtfm_cfg())
    mean, _ = rtfm_loss(model, pos.mean(1), neg.mean(1), _rtfm_cfg())
    assert seen == [(24, 6, 8), (6, 6, 8)]  # 2B·K crop sequences vs 2B mean sequences
    assert abs(crops.item() - mean.item()) > 1e-4


def test_scores_average_over_crops_and_training_runs_on_crops() -> None:
    torch.manual_seed(0)
    snip = _snippets(32, c=8, k=3)
    cfg = _uvad("uvad.ws_iters=2", "uvad.ws_batch=2", "uvad.bag_size=4", "uvad.ws_hidden=16")
    assert snip.ws_input("crops").shape == (32, 3, 8) and snip.ws_input("mean").shape == (32, 8)
    assert _snippets(32, c=8).ws_input("crops").shape == (32, 1, 8)  # no crops kept: x is the one crop
    labels = (np.arange(32) < 8).astype(np.int8)
    for kind in ("rtfm", "mil"):
        model = build_ws(kind, 8, cfg)
        losses = ws_iterations(model, kind, snip.ws_input("crops"), labels, np.arange(32.0), cfg, 0)
        assert len(losses) == 2 and all(np.isfinite(losses))
    model.eval()
    s = score_videos(model, snip.ws_input("crops"), snip.offsets)
    with torch.no_grad():
        per_crop = [model(torch.from_numpy(snip.crops[:16, i])[None])[0][0] for i in range(3)]
    assert np.allclose(s[:16], torch.stack(per_crop).mean(0).double().numpy(), atol=1e-6)
    assert not np.allclose(s, score_videos(model, snip.ws_input("mean"), snip.offsets), atol=1e-6)


def test_load_snippets_keeps_every_crop_for_the_ws_model(tmp_path) -> None:
    from omnivad.corpus.format import Corpus
    from omnivad.corpus.synth import SynthConfig, synthesize
    from omnivad.uvad.data import load_snippets

    uri = str(tmp_path / "c")
    synthesize(uri, SynthConfig(domains=1, videos_per_domain=4, test_videos_per_domain=2, dim=4, crops=3, seed=0))
    corpus = Corpus.open(uri)
    domain = corpus.domains[0]
    kept = load_snippets(corpus, domain, "train", keep_crops=True)
    plain = load_snippets(corpus, domain, "train")
    assert kept.crops is not None and kept.crops.shape == (kept.n, 3, 4) and plain.crops is None
    assert np.allclose(kept.crops.mean(1), kept.x, atol=1e-6) and np.array_equal(kept.x, plain.x)
