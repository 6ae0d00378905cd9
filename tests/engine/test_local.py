"""The shared loop without Ray: unseen-target fine-tuning with and without a new head (MDVAD A14)."""

from __future__ import annotations

import pytest

from omnivad import config
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.local import train_local
from omnivad.engine.spec import RunSpec
from omnivad.protocols import protocol_splits



@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("local") / "corpus")
    synthesize(uri, SynthConfig(domains=3, videos_per_domain=24, test_videos_per_domain=6, dim=16, seed=2))
    return Corpus.open(uri)


@pytest.mark.parametrize("mode, expect_head", [("max", False), ("new-head", True)])
def test_unseen_target_finetune(corpus, tmp_path, mode, expect_head):
    cfg = config.load(overrides=["model.method=null-mil", "train.lr=1e-3", "data.batch_per_class=6",
                                 f"model.unseen_finetune={mode}", "benchmark.folds=1"])
    target = corpus.domains[-1]
    bench = build_benchmark(corpus, cfg.benchmark, corpus.domains)
    e2 = protocol_splits(bench, "E2", 0, target)
    sources = [d for d in corpus.domains if d != target]
    method, model = train_local(cfg, RunSpec(name="pre", corpus_uri=corpus.uri, train=e2.train,
                                             head_domains=sources, steps=20))
    pre = str(tmp_path / "pre.pt")
    ckpt.write_model(pre, {"model": model.state_dict()})
    e3 = protocol_splits(bench, "E3", 0, target)
    _, tuned = train_local(cfg, RunSpec(name="ft", corpus_uri=corpus.uri, train=e3.finetune, head_domains=sources,
                                        steps=5, adapting=True, use_all=True, init_model=pre))
    assert (target in tuned.domains) is expect_head
    if expect_head:
        # the new head started as a copy of one source head, then trained on the target
        assert tuned.domains == sources + [target]
    else:
        assert tuned.domains == sources


def test_on_model_hands_over_the_trained_model_and_validating_in_on_step_leaves_the_weights_alone(corpus):
    """``train_local(on_model=...)`` (benchmarks/conflict_study.py --selection best-val validates through it):
    the model it gets is the one trained and returned, and scoring validation videos between steps changes
    neither the RNG nor the weights, so the final weights are those of a run without it."""
    import torch

    from omnivad.engine.train_loop import load_videos, validate

    cfg = config.load(overrides=["model.method=null-mil", "mdvad.ac=false", "mdvad.head_dropout=0.3",
                                 "data.batch_per_class=6", "benchmark.folds=1"])
    bench = build_benchmark(corpus, cfg.benchmark, corpus.domains)
    e1 = protocol_splits(bench, "E1", 0)
    spec = RunSpec(name="sel", corpus_uri=corpus.uri, train=e1.train, head_domains=list(corpus.domains), steps=6, seed=1)
    _, plain = train_local(cfg, spec)
    val = load_videos(corpus, e1.val, bench.locations(e1.val))
    held, seen = {}, []

    def on_step(step, _logs, _batch):
        seen.append(validate(held["method"], held["model"], val, list(corpus.domains), cfg.metrics.align))

    _, model = train_local(cfg, spec, on_step=on_step, on_model=lambda m, net: held.update(method=m, model=net))
    assert held["model"] is model and len(seen) == 6 and seen[-1]
    for (k, a), b in zip(plain.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, k
