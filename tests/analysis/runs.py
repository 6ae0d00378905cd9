"""A tiny fabricated `single` run written through the real writers (corpus + ``write_scores``), whose Eq. 8 and
per-category numbers are computed by hand in the tests.

Every snippet covers 16 frames, so a frame-level rate or AUC equals the same quantity over snippets ("units"):
normal videos have one snippet (gt 16×0), abnormal videos two (gt 16×0 then 16×1).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from omnivad.corpus.format import Corpus, Video, write_videos
from omnivad.protocols.common import Job
from omnivad.protocols.scores import write_scores

#: domain → video id → (label, categories)
TESTS = {
    "A": {"a_n1": (0, []), "a_n2": (0, []), "a_f1": (1, ["Fighting"]), "a_f2": (1, ["Fighting", "Riot"]),
          "a_r1": (1, ["Riot"])},
    "B": {"b_n1": (0, []), "b_ab1": (1, [])},
}
#: (fold, source) → domain → video → snippet scores
SCORES = {
    ("0", "A"): {"A": {"a_n1": [0.1], "a_n2": [0.6], "a_f1": [0.2, 0.7], "a_f2": [0.3, 0.5], "a_r1": [0.4, 0.35]},
                 "B": {"b_n1": [0.7], "b_ab1": [0.3, 0.4]}},
    ("0", "B"): {"A": {"a_n1": [0.5], "a_n2": [0.1], "a_f1": [0.2, 0.2], "a_f2": [0.9, 0.9], "a_r1": [0.1, 0.6]},
                 "B": {"b_n1": [0.1], "b_ab1": [0.6, 0.8]}},
}
SCORES[("1", "A")] = {"A": {**SCORES[("0", "A")]["A"], "a_n2": [0.8]}, "B": {**SCORES[("0", "A")]["B"], "b_n1": [0.2]}}
SCORES[("1", "B")] = SCORES[("0", "B")]
#: each model's validation threshold in jobs.json (for --threshold job)
THRESHOLDS = {"A": 0.95, "B": 0.35}


def _video(domain: str, vid: str, label: int, cats: list[str], split: str = "test") -> Video:
    t = 2 if label else 1
    gt = np.array([0] * 16 + [1] * 16 if label else [0] * 16, dtype=np.uint8)
    return Video(vid, domain, split, label, np.zeros((t, 1, 4), np.float32), categories=list(cats), gt=gt)


def make_corpus(root: Path) -> str:
    uri = str(root / "corpus")
    videos = [_video(d, v, lab, cats) for d, vids in TESTS.items() for v, (lab, cats) in vids.items()]
    videos += [_video(d, f"{d}_train{i}", i % 2, [], "train") for d in TESTS for i in range(2)]
    write_videos(uri, videos, feature_dim=4)
    return uri


def make_run(root: Path, protocol: str = "single") -> str:
    """A run folder (results.json, scores/, scores.csv, jobs.json) of the fabricated single run."""
    corpus_uri = make_corpus(root)
    run_dir = root / "single-mil-x"
    run_dir.mkdir()
    jobs = []
    for (fold, source), by_domain in SCORES.items():
        scores = {d: {v: {"scores": np.asarray(s, np.float32)} for v, s in vids.items()} for d, vids in by_domain.items()}
        stage = SimpleNamespace(name=f"mil/fold{fold}/single/{source}")
        jobs.append(Job((fold, source), [stage], ["A", "B"],  # type: ignore[list-item]
                        {"scores": scores, "threshold": {"rule": "test", "value": THRESHOLDS[source]}}))
    write_scores(str(run_dir), jobs, Corpus.open(corpus_uri))
    (run_dir / "results.json").write_text(json.dumps({"protocol": protocol, "corpus": {"uri": corpus_uri},
                                                      "align": "scores"}))
    return str(run_dir)
