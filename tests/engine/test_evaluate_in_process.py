"""Test scoring in the calling process (small test sets): the method's own scores, every part verified."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from omnivad import config
from omnivad.api import load_model
from omnivad.config import dump
from omnivad.corpus.format import Corpus
from omnivad.corpus.synth import SynthConfig, synthesize
from omnivad.engine.checkpoint import write_model
from omnivad.engine.evaluate import score_test_outputs, feature_bytes_of_tests
from omnivad.methods.registry import get_method
from tests.methods.test_contract import TINY


def _setup(tmp_path) -> tuple[str, str, Corpus]:
    uri = str(tmp_path / "c")
    synthesize(uri, SynthConfig(domains=2, videos_per_domain=4, test_videos_per_domain=3, dim=6, seed=3))
    corpus = Corpus.open(uri)
    torch.manual_seed(0)
    cfg = config.load(overrides=["model.method=nullang-mil", *TINY])
    net = get_method("nullang-mil").build(cfg, [corpus.domains[0]], corpus.feature_dim)
    model = str(tmp_path / "model.pt")
    write_model(model, {"model": net.state_dict(), "method": "nullang-mil", "domains": [corpus.domains[0]],
                        "feature_dim": corpus.feature_dim, "selected": "final@0", "config": dump(cfg)})
    return uri, model, corpus


def test_in_process_scores_are_the_methods_own(tmp_path) -> None:
    uri, model, corpus = _setup(tmp_path)
    want_bytes = sum(4 * v.features.size for d in corpus.domains for v in corpus.videos(d, "test"))
    assert feature_bytes_of_tests(corpus, corpus.domains) == want_bytes
    threads = torch.get_num_threads()
    got = score_test_outputs(model, corpus, corpus.domains)  # tiny: in this process, no Ray started
    assert torch.get_num_threads() == threads  # the scorer's one thread does not leak into the caller
    import ray

    assert not ray.is_initialized()
    loaded = load_model(model)
    seen, unseen = corpus.domains
    for d in corpus.domains:
        videos = corpus.videos(d, "test")
        assert sorted(got[d]) == sorted(v.video_id for v in videos)
        for v in videos:  # the seen domain through its head, the other through the unseen rule
            want = loaded.score(v.features.transpose(1, 0, 2), d if d == seen else None)
            np.testing.assert_allclose(got[d][v.video_id]["scores"], want, atol=1e-6)
            assert got[d][v.video_id]["ac"].shape == want.shape


def test_in_process_scoring_verifies_each_part(tmp_path) -> None:
    uri, model, corpus = _setup(tmp_path)
    rel = corpus.parts(corpus.domains[1], "test")[0]["path"]
    path = os.path.join(uri, rel)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(Exception, match=rf"part {rel} is corrupt: sha256"):
        score_test_outputs(model, corpus, corpus.domains)
