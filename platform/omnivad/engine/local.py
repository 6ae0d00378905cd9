"""The same loop without Ray: one process, pools read straight from the corpus.

Used as the baseline of ``benchmarks/train_throughput.py`` and by quick experiments; production runs go
through :mod:`omnivad.engine.trainer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnivad.config import Config
from omnivad.corpus.format import Corpus
from omnivad.data.balanced import BalancedBatcher, Pool
from omnivad.data.ray_datasets import resample_segments
from omnivad.engine.harness import build_optimizer, compile_model
from omnivad.engine.spec import RunSpec
from omnivad.engine.train_loop import build_model, head_index, model_domains, prepare_heads, run_steps, seed_everything
from omnivad.methods.registry import get_method


def local_pools(corpus: Corpus, spec: RunSpec, cfg: Config) -> dict[tuple[str, int], Pool]:
    pools: dict[tuple[str, int], Pool] = {}
    for d, ids in spec.train.items():
        vids = sorted(corpus.videos(d, "train", ids=ids), key=lambda v: v.video_id)
        for y in (0, 1):
            sel = [v for v in vids if v.label == y]
            x = np.stack([resample_segments(v.features, cfg.data.segments, cfg.data.resample) for v in sel]) if sel else np.zeros((0,))
            names = set.intersection(*(set(v.side) for v in sel)) if sel else set()
            side = {k: np.stack([resample_segments(v.side[k], cfg.data.segments, cfg.data.resample) for v in sel])
                    for k in sorted(names)}
            pools[(d, y)] = Pool([v.video_id for v in sel], x, side)
    return pools


def train_local(cfg: Config, spec: RunSpec, on_step: Any = None, on_model: Any = None) -> tuple[Any, torch.nn.Module]:
    """Train ``spec`` in this process; returns ``(method, model)``. ``on_step(step, logs, batch)`` after every
    step; ``on_model(method, model)`` once before the first (what a caller's ``on_step`` may validate)."""
    seed_everything(spec.seed)
    corpus = Corpus.open(spec.corpus_uri, verify=cfg.corpus.verify)
    method = get_method(cfg.model.method)
    model = build_model(method, cfg, spec, corpus.feature_dim)
    pools = local_pools(corpus, spec, cfg)
    prepare_heads(method, model, cfg, spec, pools)
    optimizer = build_optimizer(method.optimizer_params(model, cfg), "adam", cfg.train.lr, cfg.train.weight_decay)
    batcher = BalancedBatcher(
        pools, list(spec.train), head_index(spec, model_domains(method, model, spec)), cfg.data.batch_per_class, spec.seed,
        use_all=spec.use_all,
    )
    if on_model is not None:
        on_model(method, model)
    run_steps(method, compile_model(model, cfg.train.compile), optimizer, batcher, cfg, spec, 0, on_step)
    model.eval()
    return method, model
