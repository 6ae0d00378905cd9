"""The Python API for notebooks: ``omnivad.train``, ``omnivad.evaluate``, ``omnivad.predict``, ``omnivad.load_model``.

Re-exported lazily by ``omnivad/__init__.py`` (``import omnivad`` stays free of torch and Ray). ``train`` runs the
in-process loop (:mod:`omnivad.engine.local`: no Ray, one process, every training video of the corpus) and writes
an ordinary ``model.pt`` that ``predict``, ``evaluate``, ``export`` and the CLI accept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LoadedModel", "evaluate", "load_model", "predict", "train"]


@dataclass
class LoadedModel:
    """A ``model.pt`` rebuilt: the method, its network (eval mode), the payload and where it was read from."""

    method: Any
    model: Any
    payload: dict[str, Any]
    uri: str

    @property
    def domains(self) -> list[str]:
        return list(self.payload["domains"])

    def score(self, x: Any, domain: str | None = None) -> np.ndarray:
        """Snippet scores (T,) of one video ``x`` (K, T, C) or (T, C): the ``domain``'s head when the model has
        one, else the method's unseen-domain rule."""
        import torch

        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        target = domain if domain in self.domains else None
        return self.method.score(self.model, t, target).detach().cpu().numpy().astype(np.float32)


def load_model(path: str) -> LoadedModel:
    """Read a ``model.pt`` (a run's selected model, ``omnivad convert``'s output or :func:`train`'s)."""
    from omnivad.engine.checkpoint import MODEL_KEYS, read_model
    from omnivad.engine.evaluate import load_model as rebuild

    payload = read_model(path, required=MODEL_KEYS)
    method, model = rebuild(payload)
    return LoadedModel(method, model, payload, path)


def train(corpus: str, out: str, method: str = "nullang-mil", steps: int = 100, overrides: list[str] | None = None,
          domains: list[str] | None = None) -> str:
    """Train ``method`` on every training video of ``domains`` (default all) of ``corpus`` in this process
    (:func:`omnivad.engine.local.train_local`, no Ray); write ``<out>/model.pt`` and return its path.
    ``overrides``: ``KEY=VALUE`` config overrides as on the command line."""
    from omnivad.config import dump, load
    from omnivad.corpus.format import Corpus
    from omnivad.engine.checkpoint import write_model
    from omnivad.engine.local import train_local
    from omnivad.engine.spec import RunSpec

    cfg = load(overrides=[f"corpus.uri={corpus}", f"model.method={method}", f"train.steps={steps}", *(overrides or [])])
    c = Corpus.open(corpus)
    names = list(domains or c.domains)
    train_ids = {d: [str(v) for v in c.table(d, "train", columns=["video_id"]).column("video_id").to_pylist()]
                 for d in names}
    spec = RunSpec(name="api", corpus_uri=corpus, train=train_ids, val={d: [] for d in names}, head_domains=names,
                   steps=steps, seed=cfg.train.seed)
    meth, model = train_local(cfg, spec)
    path = os.path.join(out, "model.pt")
    os.makedirs(out, exist_ok=True)
    write_model(path, {"model": model.state_dict(), "method": cfg.model.method,
                       "domains": meth.head_domains(model) or names, "feature_dim": c.feature_dim,
                       "selected": f"final@{steps}", "config": dump(cfg), "spec": spec.model_dump()})
    return path


def evaluate(run_dir: str | None = None, corpus: str | None = None, scores: str | list[str] | None = None,
             align: str = "scores", domains: list[str] | None = None) -> dict[str, Any]:
    """A protocol run's metrics recomputed from its saved scores (``run_dir``,
    :func:`omnivad.protocols.scores.reevaluate`), or score directories against a corpus
    (:func:`omnivad.metrics.evaluate_dirs`)."""
    if run_dir is not None:
        from omnivad.protocols.scores import reevaluate

        return reevaluate(run_dir)
    if corpus is None or scores is None:
        raise ValueError("omnivad.evaluate: give run_dir, or corpus and scores")
    from omnivad.metrics import evaluate_dirs

    return evaluate_dirs(corpus, [scores] if isinstance(scores, str) else list(scores), domains, align=align)


def predict(model: str | LoadedModel, features: str | None = None, corpus: str | None = None,
            domain: str | None = None, split: str = "test", out: str | None = None,
            threshold: str | float | None = None) -> dict[str, np.ndarray]:
    """Snippet scores ``{video_id: (T,)}`` of a features directory or a corpus split (see
    :func:`omnivad.prediction.predict_videos`); written under ``out`` when given."""
    from omnivad.prediction import predict_videos, read_corpus_split, read_feature_dir, write_predictions

    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    if (features is None) == (corpus is None):
        raise ValueError("omnivad.predict: give exactly one of features= or corpus=")
    videos = read_feature_dir(features) if features is not None else read_corpus_split(corpus, domain, split)
    scores = predict_videos(loaded, videos, domain)
    if out is not None:
        write_predictions(out, scores, loaded, threshold, domain)
    return scores
