"""Auxiliary merges (``benchmark.merge``: CADP into TAD, NWPU into ST): the runs read the auxiliary videos
where the benchmark put them. No Ray is started here; tests/engine/test_ray_protocols.py reads them through
the Ray training datasets."""

from __future__ import annotations

from collections import Counter

import pytest

from omnivad import config
from omnivad.corpus.benchmark import build_benchmark
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.engine.train_loop import load_videos
from omnivad.protocols.runner import plan, selected_domains


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("merge") / "corpus")
    synthesize(uri, SynthConfig(domains=3, videos_per_domain=12, test_videos_per_domain=6, dim=4, seed=2))
    corpus = Corpus.open(uri)
    own, aux = corpus.domains[0], corpus.domains[2]
    # aux_policy=pool: the merged domain samples the union of its own and the auxiliary videos
    cfg = config.load(overrides=[f"corpus.uri={uri}", "benchmark.folds=1", f"benchmark.merge={{{own}: [{aux}]}}",
                                 "benchmark.aux_policy=pool", "benchmark.val_fraction=0.2"])
    return cfg, corpus, own, aux


def test_a_merge_protocol_needs_no_corpus_domains(merged) -> None:
    cfg, corpus, own, aux = merged
    assert selected_domains(cfg, corpus) == [d for d in corpus.domains if d != aux]


def test_the_merged_domain_reads_exactly_the_builders_videos(merged) -> None:
    cfg, corpus, own, aux = merged
    domains = selected_domains(cfg, corpus)
    bench = build_benchmark(corpus, cfg.benchmark, domains)
    pools = bench.pools[own]
    assert pools.aux_normal > 0 and pools.aux_abnormal > 0
    jobs = plan(cfg, corpus, bench, domains)
    spec = jobs[0].stages[0]
    fold = bench.fold(0)
    assert spec.locations[own] and all(cd == aux for cd, _ in spec.locations[own].values())
    assert {split for _, split in spec.locations[own].values()} >= {"train"}
    for part, ids in (("train", spec.train), ("val", spec.val)):
        got = load_videos(corpus, ids, spec.locations)
        for d in domains:
            want = getattr(fold, part)[d]
            assert sorted(v.video_id for v in got[d]) == sorted(want), (part, d)
            labels = Counter(v.label for v in got[d])
            assert labels == Counter(bench.info(d, vid).label for vid in want)
    train = load_videos(corpus, spec.train, spec.locations)[own]
    val = load_videos(corpus, spec.val, spec.locations)[own]
    # the builder's volumes, auxiliary videos included
    assert Counter(v.label for v in train + val) == {0: bench.volume_normal, 1: bench.volume_abnormal}
    assert any(v.domain == aux for v in train + val)
