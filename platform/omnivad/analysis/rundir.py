"""A finished protocol run as the analyses read it: ``results.json``, ``jobs.json``, the saved test scores
(:mod:`omnivad.protocols.scores`) and the test ground truth of the corpus the run names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnivad import storage
from omnivad.analysis import AnalysisError
from omnivad.corpus.format import Corpus
from omnivad.errors import CorpusError, StorageError
from omnivad.protocols.scores import read_scores


@dataclass
class TestVideo:
    """A test video's frame ground truth, label and categories (no features)."""

    gt: np.ndarray
    label: int
    categories: list[str] = field(default_factory=list)


@dataclass
class RunScores:
    """What an analysis of a run needs. ``scores``: ``{job: {domain: {video_id: (T,)}}}``; ``jobs``: the
    ``jobs.json`` records by job name; ``tests``: ``{domain: {video_id: TestVideo}}`` of the scored domains."""

    run_dir: str
    results: dict[str, Any]
    jobs: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, dict[str, np.ndarray]]]
    tests: dict[str, dict[str, TestVideo]]
    align: str

    @property
    def protocol(self) -> str:
        return str(self.results.get("protocol", ""))


def _json(run_dir: str, name: str) -> Any:
    fs, root = storage.filesystem(run_dir)
    path = storage.join(root, name)
    if not fs.exists(path):
        raise AnalysisError(f"{storage.join(run_dir, name)}: no such file (give a protocol run's folder; runs written "
                            "before test scores were saved cannot be analysed)")
    try:
        return storage.read_json(fs, path)
    except StorageError as exc:
        raise AnalysisError(str(exc)) from exc


def read_test_videos(corpus: Corpus, domains: list[str]) -> dict[str, dict[str, TestVideo]]:
    """``{domain: {video_id: TestVideo}}`` of the ``test`` videos with frame ground truth."""
    out: dict[str, dict[str, TestVideo]] = {}
    for d in domains:
        if d not in corpus.domains:
            raise AnalysisError(f"{corpus.uri}: the run scored domain {d!r}, which the corpus does not have")
        rows = corpus.table(d, "test", columns=["video_id", "label", "gt", "categories"]).to_pylist()
        out[d] = {str(r["video_id"]): TestVideo(np.asarray(r["gt"], dtype=np.uint8), int(r["label"]),
                                                list(r["categories"] or []))
                  for r in rows if r["gt"] is not None}
    return out


def load_run(run_dir: str, corpus: str | None = None, protocol: str | None = None) -> RunScores:
    """Read a run; ``protocol``: the protocol the analysis needs (an AnalysisError naming ``results.json``'s
    ``protocol`` field otherwise). ``corpus`` overrides the corpus URI results.json names."""
    results = _json(run_dir, "results.json")
    if not isinstance(results, dict):
        raise AnalysisError(f"{storage.join(run_dir, 'results.json')}: expected a JSON object")
    got = results.get("protocol")
    if protocol is not None and str(got).lower() != protocol.lower():
        raise AnalysisError(f"{storage.join(run_dir, 'results.json')}: field 'protocol' is {got!r}; this analysis "
                            f"needs a {protocol!r} protocol run (omnivad run --protocol {protocol})")
    records = _json(run_dir, "jobs.json")
    if not isinstance(records, dict) or not isinstance(records.get("jobs"), dict):
        raise AnalysisError(f"{storage.join(run_dir, 'jobs.json')}: field 'jobs' missing or not an object")
    uri = corpus or (results.get("corpus") or {}).get("uri")
    if not uri:
        raise AnalysisError(f"{storage.join(run_dir, 'results.json')}: no field 'corpus.uri'; give --corpus")
    try:
        scores = read_scores(run_dir)
        opened = Corpus.open(str(uri))
    except CorpusError as exc:
        raise AnalysisError(str(exc)) from exc
    domains = sorted({d for by_d in scores.values() for d in by_d})
    align = str(results.get("align") or (results.get("config") or {}).get("metrics", {}).get("align", "scores"))
    return RunScores(run_dir, results, dict(records["jobs"]), scores, read_test_videos(opened, domains), align)
