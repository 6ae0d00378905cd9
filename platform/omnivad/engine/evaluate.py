"""Test-set evaluation: a Ray Data pass over the test parts → ``method.score`` → frame metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch

from omnivad.config import Config
from omnivad.corpus.format import Corpus, feature_arrays
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.precision import score
from omnivad.metrics import evaluate_corpus


def load_model(payload: dict[str, Any]) -> tuple[Any, torch.nn.Module]:
    """Rebuild a selected model from a ``model.pt`` payload."""
    from omnivad.methods.registry import get_method

    cfg = Config.model_validate(payload["config"])
    method = get_method(payload["method"])
    model = method.build(cfg, list(payload["domains"]), int(payload["feature_dim"]))
    model.load_state_dict(payload["model"])
    model.eval()
    return method, model


class _Scorer:
    """Ray Data actor: holds the model once, scores full-length videos (crops averaged by the method).

    A video of a domain the model has a head for is scored with that head (seen branch); any other
    domain goes through the method's unseen-domain rule.
    """

    def __init__(self, payload: Any) -> None:
        import ray

        if isinstance(payload, ray.ObjectRef):
            payload = ray.get(payload)
        torch.set_num_threads(1)
        self.heads = set(payload["domains"])
        self.method, self.model = load_model(payload)
        self.precision = str(payload["config"].get("train", {}).get("precision", "fp32"))

    def __call__(self, table: pa.Table) -> pa.Table:
        domains = table.column("domain").to_pylist()
        scores, aux_names, aux_values = [], [], []
        for i, arr in enumerate(feature_arrays(table)):
            x = torch.tensor(arr.transpose(1, 0, 2))  # a copy: Arrow buffers are read-only
            target = domains[i] if domains[i] in self.heads else None
            s = score(self.method, self.model, x, target, self.precision)
            scores.append(s.astype(np.float32))
            aux = self.method.aux_scores(self.model, x, target)
            aux_names.append(list(aux))
            aux_values.append([np.asarray(v, dtype=np.float32) for v in aux.values()])
        return pa.table(
            {
                "domain": table.column("domain"),
                "video_id": table.column("video_id"),
                "scores": pa.array(scores, pa.list_(pa.float32())),
                "aux_names": pa.array(aux_names, pa.list_(pa.string())),
                "aux_values": pa.array(aux_values, pa.list_(pa.list_(pa.float32()))),
            }
        )


#: One test video's outputs: ``scores`` (T,) float32 and each auxiliary output (``ac``) of the method.
VideoOutputs = dict[str, np.ndarray]


#: Test sets of at most this many bytes of features are scored in the calling process (the same :class:`_Scorer`
#: code, no Ray Data actor to start: about 10 s less on a small corpus); larger ones by a Ray Data actor pool.
IN_PROCESS_SCORING_BYTES = 256 << 20


def feature_bytes_of_tests(corpus: Corpus, domains: list[str]) -> int:
    """Bytes of the float32 features of the domains' test videos (from the index; nothing is read)."""
    return sum(4 * int(r["n_snippets"]) * int(r["n_crops"]) * corpus.feature_dim
               for d in domains for r in corpus.index(d, "test"))


def score_test_outputs(
    model_uri: str, corpus: Corpus, domains: list[str], concurrency: int = 1,
    in_process_bytes: int = IN_PROCESS_SCORING_BYTES,
) -> dict[str, dict[str, VideoOutputs]]:
    """``{domain: {video_id: {"scores": (T,), **aux}}}`` (float32) of the domains' test videos; ``aux`` are the
    method's :meth:`~omnivad.methods.base.Method.aux_scores` (``ac``). One Ray Data pass, or, for a test set of
    at most ``in_process_bytes`` of features, the same reader and scorer in this process (every part verified
    against its sha256 either way)."""
    from omnivad.data.ray_datasets import _VerifiedPart, parts_dataset

    payload = ckpt.read_model(model_uri)
    parts = [p for d in domains for p in corpus.parts(d, "test")]
    columns = ["domain", "video_id", "n_snippets", "n_crops", "features"]
    got: dict[str, dict[str, VideoOutputs]] = {d: {} for d in domains}
    if feature_bytes_of_tests(corpus, domains) <= in_process_bytes:
        threads = torch.get_num_threads()
        try:
            scorer = _Scorer(payload)
            read = _VerifiedPart(corpus, columns)
            tables = [scorer(read({"path": [p["path"]], "sha256": [p["sha256"]], "rows": [p.get("rows", 0)]}))
                      for p in parts]
        finally:
            torch.set_num_threads(threads)
        rows: Any = (row for t in tables for row in t.to_pylist())
    else:
        import ray

        ds = parts_dataset(corpus, parts, columns)
        rows = ds.map_batches(_Scorer, fn_constructor_args=(ray.put(payload),), batch_format="pyarrow", batch_size=8,
                              concurrency=concurrency).iter_rows()
    for row in rows:
        video: VideoOutputs = {"scores": np.asarray(row["scores"], dtype=np.float32)}
        for name, values in zip(row["aux_names"], row["aux_values"]):
            video[str(name)] = np.asarray(values, dtype=np.float32)
        got[str(row["domain"])][str(row["video_id"])] = video
    return got


def score_test_videos(
    model_uri: str, corpus: Corpus, domains: list[str], concurrency: int = 1
) -> dict[str, dict[str, np.ndarray]]:
    """Snippet scores ``{domain: {video_id: (T,)}}`` of the domains' test videos: one Ray Data pass."""
    got = score_test_outputs(model_uri, corpus, domains, concurrency)
    return {d: {vid: v["scores"].astype(np.float64) for vid, v in by_id.items()} for d, by_id in got.items()}


def metrics_of_scores(corpus: Corpus, scores: dict[str, dict[str, np.ndarray]], domains: list[str],
                      align: str = "scores") -> dict[str, Any]:
    """Frame-level metrics of snippet scores ``{domain: {video_id: (T,)}}`` (float64, as a run computes them)."""
    flat = {f"{d}/{vid}": np.asarray(s, dtype=np.float64) for d, by_id in scores.items() for vid, s in by_id.items()}
    return evaluate_corpus(corpus, flat, domains, align=align)


def evaluate_model(
    model_uri: str, corpus: Corpus, domains: list[str], concurrency: int = 1, align: str = "scores",
    keep_scores: bool = False,
) -> dict[str, Any]:
    """Frame-level metrics of one model on each domain's test split (community protocol): per domain
    ``auc``, ``ap``, ``pr_auc``, ``auc_abnormal`` (``align``: :func:`omnivad.metrics.align_frames`).
    ``keep_scores``: the test outputs (:func:`score_test_outputs`) also under ``"scores"``."""
    got = score_test_outputs(model_uri, corpus, domains, concurrency)
    scores = {d: {vid: v["scores"] for vid, v in by_id.items()} for d, by_id in got.items()}
    result = metrics_of_scores(corpus, scores, domains, align)
    if keep_scores:
        result["scores"] = got
    return result


def evaluate_validation(
    model_uri: str, corpus: Corpus, val: dict[str, list[str]], align: str = "scores",
    where: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-domain ``{auc, ap, level}`` of a model on validation ids ``{domain: [video_id]}`` (the carve-out of
    the training split the engine selects on, :func:`omnivad.engine.train_loop.validation_metrics`), scored in
    this process (validation sets are small). ``where[domain][video_id]`` names the corpus domain a merged
    (auxiliary) video is stored under (:meth:`omnivad.corpus.benchmark.Benchmark.locate`)."""
    from omnivad.engine.train_loop import load_videos, validation_metrics

    payload = ckpt.read_model(model_uri)
    method, model = load_model(payload)
    videos = load_videos(corpus, val, where)
    precision = str(payload["config"].get("train", {}).get("precision", "fp32"))
    return validation_metrics(method, model, videos, list(payload["domains"]), align, precision)
