"""The training loop, read top to bottom: one loop for every method.

``train_loop_per_worker`` is what Ray Train runs on each worker. It reads its shard of every training
domain (``get_dataset_shard``), builds balanced batches, and calls the method's ``loss``. Rank 0 scores
the validation videos, keeps the best-on-validation weights (or, only when ``train.selection`` is
``best-test``, the papers' best-on-test weights), and writes checkpoints; a restarted run
picks up the latest checkpoint and replays the same data order (batches are a pure function of the
step, see ``data/balanced.py``).
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from omnivad.config import Config
from omnivad.corpus.format import Corpus, Video
from omnivad.data.balanced import BalancedBatcher
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.spec import RunSpec
from omnivad.methods.base import Method
from omnivad.methods.registry import get_method
from omnivad.metrics import align_frames

CRASH_ENV = "OMNIVAD_CRASH_AT_STEP"
_LOGGER = logging.getLogger("omnivad.train")


def _log(message: str) -> None:
    """Ray Train routes worker logging to the driver once (its patched ``print`` would echo twice)."""
    _LOGGER.info(message)  # tests: simulate a worker killed mid-training


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def build_model(method: Method, cfg: Config, spec: RunSpec, feature_dim: int) -> torch.nn.Module:
    model = method.build(cfg, list(spec.head_domains), feature_dim)
    if spec.init_model:
        payload = ckpt.read_model(spec.init_model)
        model.load_state_dict(payload["model"])
    return model


def head_index(spec: RunSpec, heads: list[str] | None = None) -> dict[str, int]:
    """Each training domain's head index, -1 for a domain the model has no head for."""
    index = {d: i for i, d in enumerate(heads if heads is not None else spec.head_domains)}
    return {d: index.get(d, -1) for d in spec.train}


def model_domains(model: torch.nn.Module, spec: RunSpec) -> list[str]:
    return list(getattr(model, "domains", spec.head_domains))


def prepare_heads(method: Method, model: torch.nn.Module, cfg: Config, spec: RunSpec, pools: dict[Any, Any]) -> None:
    """Give a method the chance to add heads for training domains it has none for (MDVAD A14's
    ``new-head`` option); the hook is optional and sees the domain's training videos."""
    hook = getattr(method, "prepare_target", None)
    if hook is None:
        return
    for d in spec.train:
        if d in model_domains(model, spec):
            continue
        xs = [p.x for (dom, _y), p in pools.items() if dom == d and len(p.ids)]
        if not xs:
            continue
        x = torch.from_numpy(np.concatenate(xs).transpose(0, 2, 1, 3).copy())  # (B, K, T, C)
        hook(model, d, cfg, x, torch.ones(x.shape[:2], dtype=torch.bool))


def score_video(method: Method, model: torch.nn.Module, video: Video, target: str | None) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(video.features.transpose(1, 0, 2)))  # (K, T, C)
    return method.score(model, x, target).detach().cpu().numpy().astype(np.float64)


def load_videos(
    corpus: Corpus, ids: dict[str, list[str]], locations: dict[str, dict[str, tuple[str, str]]] | None = None
) -> dict[str, list[Video]]:
    """``{domain: videos sorted by id}`` of ``ids``, each read where the corpus stores it (``locations``:
    merged auxiliary videos; default the domain's ``train`` split)."""
    from omnivad.engine.spec import group_by_location

    out: dict[str, list[Video]] = {}
    for d, vids in ids.items():
        videos: list[Video] = []
        for (cd, split), group in group_by_location(d, vids, locations or {}).items():
            videos += corpus.videos(cd, split, ids=group)
        out[d] = sorted(videos, key=lambda v: v.video_id)
    return out


def validation_metrics(
    method: Method, model: torch.nn.Module, videos: dict[str, list[Video]], heads: list[str], align: str = "scores"
) -> dict[str, dict[str, Any]]:
    """Per-domain validation ``{auc, ap, level}``: frame-level when every video has frame labels (aligned as
    the test metric, ``metrics.align``), else video-level (max snippet score against the video label, the only
    label weak supervision gives). A domain whose labels hold one class is left out."""
    from sklearn.metrics import average_precision_score

    out: dict[str, dict[str, Any]] = {}
    was_training = model.training
    model.eval()
    for domain, vids in videos.items():
        target = domain if domain in heads else None
        scores = [score_video(method, model, v, target) for v in vids]
        if all(v.gt is not None for v in vids):
            pairs = [align_frames(sc, v.gt, align) for sc, v in zip(scores, vids)]
            y = np.concatenate([g for _, g in pairs])
            s = np.concatenate([f for f, _ in pairs])
            level = "frame"
        else:
            y = np.array([v.label for v in vids])
            s = np.array([sc.max() for sc in scores])
            level = "video"
        if len(np.unique(y)) == 2:
            out[domain] = {"auc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s)), "level": level}
    model.train(was_training)
    return out


def validate(
    method: Method, model: torch.nn.Module, videos: dict[str, list[Video]], heads: list[str], align: str = "scores"
) -> dict[str, float]:
    """Per-domain validation AUC (:func:`validation_metrics`): what ``best-val`` selects on."""
    return {d: m["auc"] for d, m in validation_metrics(method, model, videos, heads, align).items()}


def run_steps(
    method: Method,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batcher: BalancedBatcher,
    cfg: Config,
    spec: RunSpec,
    start_step: int,
    on_step: Any = None,
    device: torch.device | str = "cpu",
) -> None:
    """The inner loop shared by the Ray Train worker and the plain single-process baseline."""
    model.train()
    for step in range(start_step, spec.steps):
        batch = batcher.batch(step).to(device)
        loss, logs = method.loss(model, batch, cfg, adapting=spec.adapting)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step + 1, logs, batch)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    cfg = Config.model_validate(config["cfg"])
    spec = RunSpec.model_validate(config["spec"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device() if cfg.scaling.use_gpu else torch.device("cpu")
    seed_everything(spec.seed)
    corpus = Corpus.open(spec.corpus_uri, verify=cfg.corpus.verify)
    method = get_method(cfg.model.method)
    model = build_model(method, cfg, spec, corpus.feature_dim)

    # Data: this worker's shard of every training domain, as per-(domain, label) pools.
    from omnivad.data.ray_datasets import collect_pools

    pools = {}
    for d in spec.train:
        pools.update(collect_pools(ray.train.get_dataset_shard(f"train_{d}"), d))
    prepare_heads(method, model, cfg, spec, pools)  # DDP below broadcasts rank 0's choice
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)

    # Resume: the latest checkpoint of this run (same name and storage path), if any.
    start_step, best = 0, {"val": -1.0, "step": 0, "model": None}
    history: list[dict[str, Any]] = []
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            state = ckpt.load_state(d)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_step, best, history = int(state["step"]), state["best"], list(state["history"])
        if rank == 0:
            _log(f"[omnivad] {spec.name}: resumed at step {start_step}")
    heads = model_domains(model, spec)
    batcher = BalancedBatcher(
        pools, list(spec.train), head_index(spec, heads), cfg.data.batch_per_class, spec.seed, rank, world, spec.use_all
    )
    val_videos: dict[str, list[Video]] = {}
    if rank == 0 and spec.val:
        val_videos = load_videos(corpus, spec.val, spec.locations)
    # best-test reproduces the papers' practice (optimistic; labelled as such in every result)
    select_on_test = cfg.train.selection == "best-test" and bool(spec.test_domains)
    test_videos: dict[str, list[Video]] = {}
    if rank == 0 and select_on_test:
        test_videos = {d: sorted(corpus.videos(d, "test"), key=lambda v: v.video_id) for d in spec.test_domains}
    if rank == 0:
        _log(f"[omnivad] {spec.name}: {sum(len(p.ids) for p in pools.values())} training videos on rank 0, "
             f"{sum(len(v) for v in val_videos.values())} validation videos, heads {heads}")

    net: torch.nn.Module = model
    if world > 1:
        net = _AttrDDP(model, device_ids=[device] if cfg.scaling.use_gpu else None, find_unused_parameters=True)

    crash_at = int(os.environ.get(CRASH_ENV, "0") or 0)
    t0, snippets = time.perf_counter(), 0

    def on_step(step: int, logs: dict[str, float], batch: Any) -> None:
        nonlocal t0, snippets, best
        snippets += int(batch.mask.sum().item()) * batch.x.shape[2]
        if crash_at and step == crash_at and restored is None:
            os._exit(137)  # as if the worker were killed: no cleanup, no final checkpoint
        evaluate_now = step % cfg.train.eval_every == 0 or step == spec.steps
        save_now = step % cfg.train.checkpoint_every == 0 or step == spec.steps
        if not (evaluate_now or save_now or step % cfg.train.log_every == 0):
            return
        metrics: dict[str, Any] = {"step": step, **{k: float(v) for k, v in logs.items()}}
        metrics["snippets_per_s"] = snippets * world / max(time.perf_counter() - t0, 1e-9)
        if rank == 0 and evaluate_now and (val_videos or test_videos):
            per_domain = validate(method, model, val_videos, heads, cfg.metrics.align) if val_videos else {}
            if per_domain:
                metrics["val_auc"] = float(np.mean(list(per_domain.values())))
            if select_on_test:
                per_domain = validate(method, model, test_videos, heads, cfg.metrics.align)
                metrics["test_auc"] = float(np.mean(list(per_domain.values()))) if per_domain else float("nan")
            val = float(np.mean(list(per_domain.values()))) if per_domain else float("nan")
            if per_domain and val > best["val"]:
                best = {"val": val, "step": step, "model": copy.deepcopy(model.state_dict())}
        if rank == 0:
            history.append(metrics)
            _log(f"[omnivad] {spec.name} step {step}/{spec.steps} " + " ".join(
                f"{k}={v:.4g}" for k, v in metrics.items() if k != "step"))
        checkpoint = None
        tmp = None
        if save_now and rank == 0:
            tmp = tempfile.mkdtemp(prefix="omnivad-ckpt-")
            ckpt.save_state(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": torch.get_rng_state(),
                    "step": step,
                    "best": best,
                    "history": history,
                    "domains": heads,
                    "config": config["cfg"],
                    "spec": config["spec"],
                },
                tmp,
            )
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        if evaluate_now or save_now:
            # every worker reports at the same steps (report is a barrier)
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"step-{step:08d}" if save_now else None)
        if tmp:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    run_steps(method, net, optimizer, batcher, cfg, spec, start_step, on_step, device)


class _AttrDDP(torch.nn.parallel.DistributedDataParallel):
    """DDP that forwards attribute look-ups (``model.domains``...) to the wrapped model."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)
