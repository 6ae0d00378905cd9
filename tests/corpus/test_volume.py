"""``benchmark.volume``: balanced sampled sets (MDVAD Table 4) vs each domain's original training set (Table 2)."""

from __future__ import annotations

from collections import Counter

import pytest

from omnivad.config import BenchmarkConfig
from omnivad.corpus.benchmark import build_benchmark
from omnivad.errors import ConfigError, CorpusError
from tests.corpus.test_benchmark import MERGE, SIX, _labels, _selected, mdvad_rows

#: Table A1's original training splits (normal, abnormal) of the six domains.
ORIGINAL = {"UCFC": (800, 810), "XD": (2049, 1905), "LAD": (958, 482), "UBIF": (757, 176), "TAD": (210, 190),
            "ST": (175, 63)}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return mdvad_rows()


def test_default_volume_is_balanced(rows):
    assert BenchmarkConfig().volume == "balanced"
    b = build_benchmark(rows, BenchmarkConfig(merge=MERGE, folds=1))
    assert (b.volume_normal, b.volume_abnormal) == (210, 176)
    for d in SIX:
        assert _labels(b, d, _selected(b, 0, d)) == Counter({0: 210, 1: 176})


def test_original_keeps_every_own_training_video(rows):
    b = build_benchmark(rows, BenchmarkConfig(volume="original", merge=MERGE, folds=2))
    assert (b.volume_normal, b.volume_abnormal) == (None, None)
    for f in range(2):
        for d, (n, a) in ORIGINAL.items():
            sel = _selected(b, f, d)
            assert len(sel) == len(set(sel)) == n + a
            assert _labels(b, d, sel) == Counter({0: n, 1: a})
            assert all(b.videos[d][v].corpus_domain == d for v in sel)  # no CADP/NWPU videos
    # folds differ only in the validation carve-out; low-shot follows each domain's own size (ceil(0.1·n/2))
    assert sorted(_selected(b, 0, "UCFC")) == sorted(_selected(b, 1, "UCFC"))
    assert b.folds[0].val["UCFC"] != b.folds[1].val["UCFC"]
    assert _labels(b, "UCFC", b.folds[0].low_shot["UCFC"]) == Counter({0: 81, 1: 81})  # ceil(0.1 · 1610 / 2)
    assert _labels(b, "ST", b.folds[0].low_shot["ST"]) == Counter({0: 12, 1: 12})  # ceil(0.1 · 238 / 2)
    assert len(b.folds[0].test["XD"]) == 800


def test_original_rejects_explicit_volumes(rows):
    with pytest.raises(ConfigError, match="benchmark.volume_normal"):
        build_benchmark(rows, BenchmarkConfig(volume="original", volume_normal=10), domains=SIX)


def test_original_needs_both_classes_in_train(rows):
    with pytest.raises(CorpusError, match="'NWPU': no abnormal videos"):
        build_benchmark(rows, BenchmarkConfig(volume="original"), domains=["UCFC", "NWPU"])
