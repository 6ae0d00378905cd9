"""Test-set evaluation: a Ray Data pass over the test parts → ``method.score`` → frame metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch

from omnivad import storage
from omnivad.config import Config
from omnivad.corpus.format import Corpus
from omnivad.engine import checkpoint as ckpt
from omnivad.metrics import evaluate_domain


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
    """Ray Data actor: holds the model once, scores full-length videos (crops averaged by the method)."""

    def __init__(self, payload: Any, feature_dim: int, target: str | None) -> None:
        import ray

        if isinstance(payload, ray.ObjectRef):
            payload = ray.get(payload)
        torch.set_num_threads(1)
        self.method, self.model = load_model(payload)
        self.c = feature_dim
        self.target = target

    def __call__(self, table: pa.Table) -> pa.Table:
        feats = table.column("features").combine_chunks()
        flat = feats.values.to_numpy(zero_copy_only=False)
        offsets = feats.offsets.to_numpy()
        t_col = table.column("n_snippets").to_pylist()
        k_col = table.column("n_crops").to_pylist()
        scores = []
        for i in range(table.num_rows):
            x = flat[offsets[i] : offsets[i + 1]].reshape(t_col[i], k_col[i], self.c).transpose(1, 0, 2)
            s = self.method.score(self.model, torch.from_numpy(np.ascontiguousarray(x)), self.target)
            scores.append(s.detach().cpu().numpy().astype(np.float32))
        return pa.table({"video_id": table.column("video_id"), "scores": pa.array(scores, pa.list_(pa.float32()))})


def score_domain(
    model_uri: str, corpus: Corpus, domain: str, concurrency: int = 1
) -> dict[str, np.ndarray]:
    """Snippet scores ``{video_id: (T,)}`` of a domain's test videos, computed on Ray Data actors."""
    import ray
    import ray.data

    payload = ckpt.read_model(model_uri)
    heads = list(payload["domains"])
    target = domain if domain in heads else None
    ds = ray.data.read_parquet(
        corpus.part_paths(domain, "test"),
        filesystem=storage.arrow_filesystem(corpus.fs),
        columns=["video_id", "n_snippets", "n_crops", "features"],
    )
    ref = ray.put(payload)
    out = ds.map_batches(
        _Scorer,
        fn_constructor_args=(ref, corpus.feature_dim, target),
        batch_format="pyarrow",
        batch_size=8,
        concurrency=concurrency,
    )
    scores: dict[str, np.ndarray] = {}
    for row in out.iter_rows():
        scores[str(row["video_id"])] = np.asarray(row["scores"], dtype=np.float64)
    return scores


def evaluate_model(model_uri: str, corpus: Corpus, domains: list[str], concurrency: int = 1) -> dict[str, Any]:
    """Frame-level metrics of one model on each domain's test split (community protocol)."""
    per_domain: dict[str, dict[str, Any]] = {}
    for d in domains:
        scores = score_domain(model_uri, corpus, d, concurrency=concurrency)
        table = corpus.table(d, "test", columns=["video_id", "gt", "label", "n_snippets"])
        videos = [
            (vid, np.asarray(gt, dtype=np.uint8) if gt is not None else np.zeros(16 * t, np.uint8), int(lab))
            for vid, gt, lab, t in zip(*(table.column(c).to_pylist() for c in ["video_id", "gt", "label", "n_snippets"]))
        ]
        per_domain[d] = evaluate_domain(videos, scores, d)
    aucs = [m["auc"] for m in per_domain.values()]
    return {"per_domain": per_domain, "mean_auc": float(np.mean(aucs)) if aucs else float("nan")}
