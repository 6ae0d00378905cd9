"""Learning claims of the MDVAD issue, checked end to end on a synthetic corpus.

Each test trains real models with the platform's loop (:func:`omnivad.engine.local.train_local`) on a
synthetic corpus (``omnivad.corpus.synth``) whose abnormal conflict is planted and known from its truth file:

1. held-in (E1): multi-head Null-MIL beats single-head MIL on the domains whose normal videos hold conflict
   events (events abnormal elsewhere), frame AUC with seen-target scoring (Eq. 5);
2. the Eq. 6 AC pseudo-labels of a trained Null-MIL model fire on planted conflict snippets far more often than on
   background snippets;
3. leave-one-out (E2): a domain with no head is scored through the unseen branch (max over heads) well above
   chance, and ``target=None`` is the same branch as naming the head-less target;
4. the logged ``ac_pos_rate`` is finite and well below 1, and the training loss decreases.

Corpus choices (measured during development on 2 shared cores; numbers below are for seeds 0, 1, 2):

- ``videos_per_domain=120``: with the default 60 training videos per domain each Null-MIL head sees too few videos
  and Null-MIL does *not* beat MIL (0.77 vs 0.83 mean AUC, seed 0, default noise/event norm).
- ``event_norm=2.0`` (default 1.5 = 3x noise): at 1.5 Null-MIL is unstable over *training* seeds (same corpus,
  seed 2: mean AUC 0.93 / 0.69 / 0.86 for training seeds 1 / 2 / 3): some runs fit the top-K of each head's 60
  abnormal videos with noise instead of the event and score test events ~0.2. At 2.0 every run tried was stable.
- ``scene_shift=0.5`` (default 1.0): each head is trained on its own domain only, so on another domain's background
  (another scene vector) its output is unconstrained; at 1.0 Eq. 6 fires on 30-47% of the background snippets and
  the conflict/background ratio is only 2-3x. At 0.5 it is 5-23% and the ratio 4-18x.
- claim 3 uses a second corpus with ``conflict_strength=0.3``: at 1.0 every normal test video of the unseen target
  holds an event that some source head calls abnormal (exactly the conflict the paper describes), and an event
  abnormal only in the target is missed by every source head; that caps the unseen AUC (0.57-0.87 over targets and
  seeds at scene_shift 0.5, event_norm 1.5). The claim tested is that the unseen branch works, not that the
  conflict is harmless.

Seeds: SEED (default 0; override with ``OMNIVAD_TEST_SEED``, which tests/margins.py sweeps) fixes the corpus, the benchmark and the
training run. Runtime on 2 shared cores: about 40 s (load-dependent).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pytest
import torch

from omnivad import config
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus, Video
from omnivad.corpus.synth import SynthConfig, read_truth, synthesize
from omnivad.engine.local import train_local
from omnivad.engine.spec import RunSpec
from omnivad.methods.mdvad.loss import ac_pseudo_labels, forward_crops
from omnivad.metrics import evaluate_domain
from omnivad.protocols import protocol_splits

pytestmark = pytest.mark.learning
SEED = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))
STEPS = 200
COMMON = [
    "train.lr=1e-3",
    "data.batch_per_class=16",  # 4 normal + 4 abnormal videos per domain and step
    "benchmark.folds=1",
    "benchmark.val_fraction=0",
]
MAIN_CORPUS = dict(dim=32, videos_per_domain=120, test_videos_per_domain=30, scene_shift=0.5, event_norm=2.0, conflict_strength=1.0)
UNSEEN_CORPUS = dict(MAIN_CORPUS, conflict_strength=0.3)
UNSEEN_TARGET = "indoor"



# ---------------------------------------------------------------------------------------------- helpers
def _x(video: Video) -> torch.Tensor:
    """(K, T, C) crops-first tensor of a video (as the engine's score_video builds it)."""
    return torch.from_numpy(np.array(video.features.transpose(1, 0, 2)))


class World:
    """A synthetic corpus, its truth, one-fold benchmark and cached trained models."""

    def __init__(self, uri: str, synth: dict[str, Any]) -> None:
        synthesize(uri, SynthConfig(seed=SEED, **synth))
        self.uri = uri
        self.corpus = Corpus.open(uri)
        self.truth = read_truth(uri)
        self.domains: list[str] = list(self.truth["domains"])
        self.bench = build_benchmark(self.corpus, config.load(overrides=COMMON).benchmark, self.domains)
        self.tests = {d: sorted(self.corpus.videos(d, "test"), key=lambda v: v.video_id) for d in self.domains}
        self._runs: dict[tuple[str, ...], tuple[Any, torch.nn.Module, list[dict[str, float]]]] = {}

    def train(self, method: str, protocol: str = "E1", target: str | None = None, *overrides: str):
        key = (method, protocol, str(target), *overrides)
        if key not in self._runs:
            cfg = config.load(overrides=[*COMMON, f"model.method={method}", *overrides])
            split = protocol_splits(self.bench, protocol, 0, target)
            spec = RunSpec(
                name=f"{method}-{protocol}", corpus_uri=self.uri, train=split.train,
                head_domains=list(split.source_domains), steps=STEPS, seed=SEED,
            )
            logs: list[dict[str, float]] = []
            method_obj, model = train_local(cfg, spec, on_step=lambda step, lg, batch: logs.append(dict(lg)))
            self._runs[key] = (method_obj, model, logs)
        return self._runs[key]

    def auc(self, method: Any, model: torch.nn.Module, domain: str, target: str | None) -> float:
        """Pooled frame AUC of ``domain``'s test videos, scored for ``target`` (a head name, or unseen)."""
        vids = self.tests[domain]
        scores = {v.video_id: method.score(model, _x(v), target).numpy() for v in vids}
        return float(evaluate_domain([(v.video_id, v.gt, v.label) for v in vids], scores, domain)["auc"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(str(tmp_path_factory.mktemp("learning") / "corpus"), MAIN_CORPUS)


@pytest.fixture(scope="module")
def unseen_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(str(tmp_path_factory.mktemp("learning-unseen") / "corpus"), UNSEEN_CORPUS)


# ---------------------------------------------------------------------------------------------- claim 1
def test_null_mil_beats_single_head_mil_held_in(world: World, claim) -> None:
    """E1, same steps/lr/batches, no AC term for either (Eq. 1 vs Eq. 2 alone).

    The single head sees a conflict event labelled abnormal in one domain and normal (top-K of a normal video) in
    another, and ends up scoring conflict events low everywhere, missing them where they are abnormal; each Null
    head learns its own domain's rule. Fails if the heads were not separated (e.g. every video trained every head,
    or seen-target scoring used the wrong head): Null-MIL then behaves like MIL or worse.
    Measured (seed: MIL / Null-MIL mean AUC): 0: 0.794 / 0.995, 1: 0.812 / 0.996, 2: 0.844 / 0.960."""
    conflicted = [d for d in world.domains if world.truth["normal_conflict_events"][d]]
    assert conflicted, "the corpus must plant conflict events that are normal in some domain"
    mean: dict[str, float] = {}
    per_domain: dict[str, dict[str, float]] = {}
    for method_name in ("mil", "null-mil"):
        method, model, _ = world.train(method_name, "E1", None, "loss.ac=false")
        per_domain[method_name] = {d: world.auc(method, model, d, d) for d in conflicted}
        mean[method_name] = float(np.mean(list(per_domain[method_name].values())))
    msg = f"per-domain test AUC: {per_domain}"
    print(f"seed {SEED}: mean AUC {mean}; {msg}")
    # seeds 0-4 (tests/README.md): +0.115 .. +0.233, mean 0.177 ± 0.045; the bar keeps 2 std below the worst seed
    claim("Null-MIL − MIL mean AUC", mean["null-mil"] - mean["mil"], ">", 0.02, msg)
    claim("Null-MIL mean AUC", mean["null-mil"], ">", 0.85, msg)


# ---------------------------------------------------------------------------------------------- claim 2
def _snippet_kinds(world: World, domain: str, split: str, videos: list[Video]) -> dict[str, np.ndarray]:
    """Per video: 0 background, 1 general-abnormal event, 2 conflict event (whatever its label in this domain)."""
    conflict = set(world.truth["conflict"])
    planted = {r["video_id"]: r for r in world.truth["planted"][domain][split]}
    out = {}
    for v in videos:
        k = np.zeros(v.n_snippets, dtype=np.int64)
        r = planted.get(v.video_id)
        if r is not None:
            k[r["start"] : r["end"]] = 2 if r["event"] in conflict else 1
        out[v.video_id] = k
    return out


def test_ac_pseudo_labels_fire_on_conflict_snippets(world: World, claim) -> None:
    """Eq. 6 on the training videos (full length, eval mode) of a trained Null-MIL+AC model.

    Conflict snippets: heads of domains where the event is abnormal score it high, the others low, so the spread
    exceeds tau; on background every head should be low. Fails if the pseudo-labels ignored the heads' spread
    (e.g. min over heads, or a single head), or if heads did not specialise (all heads alike: no firing anywhere).
    Measured (seed: conflict / background rate): 0: 0.94 / 0.074, 1: 0.95 / 0.052, 2: 0.95 / 0.23 (4.1x)."""
    method, model, _ = world.train("null-mil", "E1", None)
    cfg = config.load(overrides=COMMON)
    fired: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    model.eval()
    for d in world.domains:
        vids = sorted(world.corpus.videos(d, "train"), key=lambda v: v.video_id)
        kinds = _snippet_kinds(world, d, "train", vids)
        for v in vids:
            with torch.no_grad():
                out = forward_crops(model, _x(v).unsqueeze(0))
            y = ac_pseudo_labels(out["abn"], cfg.loss.ac_rule, cfg.loss.tau)[0].numpy()
            for k in fired:
                fired[k].append(y[kinds[v.video_id] == k])
    rate = {k: float(np.concatenate(v).mean()) for k, v in fired.items()}
    msg = f"firing rate background={rate[0]:.3f} general-abnormal={rate[1]:.3f} conflict={rate[2]:.3f}"
    print(f"seed {SEED}: {msg}")
    claim("conflict firing rate", rate[2], ">", 0.5, msg)
    # the difference, not the ratio: with a background rate of 0.05-0.23 the ratio ranged 4.1-18.7 over seeds 0-4
    # (std 6.3, a bar of 3 within one std of the worst seed); the difference ranged 0.72-0.92 (std 0.08)
    claim("conflict − background firing rate", rate[2] - rate[0], ">", 0.5, msg)


# ---------------------------------------------------------------------------------------------- claim 3
@pytest.mark.parametrize("method_name", ["null-mil", "nullang-mil"])
def test_unseen_domain_scoring(unseen_world: World, method_name: str, claim) -> None:
    """E2: train on every domain but the target, score the target through Eq. 5's unseen branch.

    Fails if the unseen branch were wrong (e.g. a fixed head, the min over heads, or an error for a head-less
    target) or if general-abnormal events did not transfer across domains.
    Measured (seed: null-mil / nullang-mil AUC): 0: 0.970 / 0.949, 1: 0.976 / 0.952, 2: 0.906 / 0.942."""
    w = unseen_world
    method, model, _ = w.train(method_name, "E2", UNSEEN_TARGET)
    assert UNSEEN_TARGET not in model.domains and len(model.domains) == len(w.domains) - 1
    for v in w.tests[UNSEEN_TARGET][:5]:
        assert torch.equal(method.score(model, _x(v), None), method.score(model, _x(v), UNSEEN_TARGET))
    auc = w.auc(method, model, UNSEEN_TARGET, UNSEEN_TARGET)
    print(f"seed {SEED}: {method_name} unseen {UNSEEN_TARGET} AUC {auc:.3f}")
    claim("unseen-target AUC", auc, ">", 0.7, method_name)


# ---------------------------------------------------------------------------------------------- claim 4
def test_training_logs(world: World, claim) -> None:
    """The Null-MIL+AC run of claim 2: loss goes down, the logged AC terms are finite, and ac_pos_rate is well below
    1 (Eq. 6 firing on most snippets would mean the heads disagree everywhere). Fails on NaN losses, a loss that
    does not fall, or pseudo-labels that fire on nearly everything.
    Measured (seed: first-10 -> last-20 mean loss, ac_pos_rate): 0: 1.05 -> 0.09, 0.23; 1: 1.09 -> 0.09, 0.21;
    2: 1.11 -> 0.23, 0.38."""
    _, _, logs = world.train("null-mil", "E1", None)
    assert len(logs) == STEPS
    for key in ("loss", "mil", "ac", "ac_pos_rate"):
        assert all(math.isfinite(lg[key]) for lg in logs), key
    first = float(np.mean([lg["loss"] for lg in logs[:10]]))
    last = float(np.mean([lg["loss"] for lg in logs[-20:]]))
    claim("last-20 / first-10 mean loss", last / first, "<", 0.4)  # seeds 0-4: 0.07-0.21
    pos = float(np.mean([lg["ac_pos_rate"] for lg in logs[-20:]]))
    print(f"seed {SEED}: loss {first:.3f} -> {last:.3f}, ac_pos_rate {pos:.3f}")
    assert pos > 0.0, pos
    claim("ac_pos_rate (last 20 steps)", pos, "<", 0.6)
