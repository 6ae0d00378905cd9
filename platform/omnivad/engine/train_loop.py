"""The training loop, read top to bottom: one loop for every method.

``train_loop_per_worker`` is what Ray Train runs on each worker (launched by ``engine/harness.py``):
setup, restore, then for each step: batch, loss, optimizer step; evaluate, checkpoint. It reads its shard
of every training domain (``get_dataset_shard``), builds balanced batches, and calls the method's ``loss``. Rank 0 scores
the validation videos, keeps the best-on-validation weights (or, only when ``train.selection`` is
``best-test``, the papers' best-on-test weights), and writes checkpoints; a restarted run
picks up the latest checkpoint and replays the same data order (batches are a pure function of the
step, see ``data/balanced.py``).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from omnivad import storage
from omnivad.config import Config
from omnivad.corpus.format import Corpus, Video
from omnivad.data.balanced import BalancedBatcher, DeviceBatcher
from omnivad.engine import checkpoint as ckpt
from omnivad.engine import harness
from omnivad.engine import precision as prec
from omnivad.engine.timing import Phases, worker_timing
from omnivad.engine.spec import RunSpec
from omnivad.methods.base import Method
from omnivad.methods.registry import get_method
from omnivad.logs import eta
from omnivad.metrics import align_frames
from omnivad.tracking import Tracker, open_tracker, run_params

_LOGGER = logging.getLogger("omnivad.train")


def _log(message: str) -> None:
    """Ray Train routes worker logging to the driver once (its patched ``print`` would echo twice)."""
    _LOGGER.info(message)


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


def model_domains(method: Method, model: torch.nn.Module, spec: RunSpec) -> list[str]:
    """The model's head domains (``Method.head_domains``), or the spec's for a model without per-domain heads."""
    heads = method.head_domains(model)
    return list(heads) if heads is not None else list(spec.head_domains)


def prepare_heads(method: Method, model: torch.nn.Module, cfg: Config, spec: RunSpec, pools: dict[Any, Any]) -> None:
    """Give the method the chance to adapt the model to training domains it has no head for
    (``Method.prepare_target``, e.g. a new head cloned from the most similar one); it sees their training videos."""
    for d in spec.train:
        if d in model_domains(method, model, spec):
            continue
        xs = [p.x for (dom, _y), p in pools.items() if dom == d and len(p.ids)]
        if not xs:
            continue
        x = torch.from_numpy(np.concatenate(xs).transpose(0, 2, 1, 3).copy())  # (B, K, T, C)
        method.prepare_target(model, d, cfg, x, torch.ones(x.shape[:2], dtype=torch.bool))


def score_video(method: Method, model: torch.nn.Module, video: Video, target: str | None,
                precision: str = "fp32") -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(video.features.transpose(1, 0, 2)))  # (K, T, C)
    return prec.score(method, model, x, target, precision)


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
    method: Method, model: torch.nn.Module, videos: dict[str, list[Video]], heads: list[str], align: str = "scores",
    precision: str = "fp32",
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
        scores = [score_video(method, model, v, target, precision) for v in vids]
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
    method: Method, model: torch.nn.Module, videos: dict[str, list[Video]], heads: list[str], align: str = "scores",
    precision: str = "fp32",
) -> dict[str, float]:
    """Per-domain validation AUC (:func:`validation_metrics`): what ``best-val`` selects on."""
    return {d: m["auc"] for d, m in validation_metrics(method, model, videos, heads, align, precision).items()}


class ClippedOptimizer:
    """``optimizer`` whose ``step`` first clips the gradient norm of its own parameters to ``max_norm``
    (``train.grad_clip``, ``clip_grad_norm_``); everything else is the optimizer's."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_norm: float) -> None:
        self.optimizer = optimizer
        self.max_norm = float(max_norm)

    def params(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]

    def step(self, closure: Any = None) -> Any:
        torch.nn.utils.clip_grad_norm_(self.params(), self.max_norm)
        return self.optimizer.step(closure)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


def clipped(optimizers: Any, max_norm: float | None) -> Any:
    """``optimizers`` (one, a list/tuple or a dict of them) with each one's step clipping its own parameters to
    ``max_norm``; unchanged when ``max_norm`` is None. A method's own ``training_step`` gets these, so the clip
    reaches every method and, with several optimisers, each one's parameters separately."""
    if max_norm is None:
        return optimizers
    if isinstance(optimizers, dict):
        return {k: clipped(v, max_norm) for k, v in optimizers.items()}
    if isinstance(optimizers, (list, tuple)):
        return type(optimizers)(clipped(o, max_norm) for o in optimizers)
    return ClippedOptimizer(optimizers, max_norm)


def train_step(
    method: Method, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: Any, cfg: Config, spec: RunSpec
) -> dict[str, float]:
    """One optimizer step on ``batch``: the method's own ``training_step`` when it has one, else its loss,
    backward, step; returns the loss's logs. The forward (and the loss) run under ``train.precision``; with
    ``train.grad_clip`` every step clips its optimizer's gradient norm first (:func:`clipped`)."""
    opt = clipped(optimizer, cfg.train.grad_clip)
    with prec.autocast(cfg.train.precision, batch.x.device):
        own = method.training_step(model, batch, opt, cfg, adapting=spec.adapting)
        if own is not None:
            return own
        loss, logs = method.loss(model, batch, cfg, adapting=spec.adapting)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return logs


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
    """The plain single-process loop (``engine/local.py``, the throughput benchmark): the worker's steps."""
    model.train()
    for step in range(start_step, spec.steps):
        batch = batcher.batch(step).to(device, non_blocking=True)
        logs = train_step(method, model, optimizer, batch, cfg, spec)
        if on_step is not None:
            on_step(step + 1, logs, batch)


@dataclass
class Worker:
    """What one Ray Train worker holds: the unwrapped ``model`` (attributes, state dicts, validation), its
    optimizer and batcher, and on rank 0 the videos it selects on."""

    config: dict[str, Any]
    cfg: Config
    spec: RunSpec
    info: harness.WorkerInfo
    method: Method
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batcher: BalancedBatcher
    heads: list[str]
    val_videos: dict[str, list[Video]]
    test_videos: dict[str, list[Video]]
    tracker: Tracker = field(default_factory=Tracker)
    timer: Phases = field(default_factory=Phases)


@dataclass
class Progress:
    """What a checkpoint carries besides the weights: steps done, the best-so-far selection, the history."""

    step: int = 0
    best: dict[str, Any] = field(default_factory=lambda: {"val": -1.0, "step": 0, "model": None})
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Throughput:
    world: int
    start_step: int = 0
    snippets: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def add(self, batch: Any) -> None:
        self.snippets += int(batch.mask.sum().item()) * batch.x.shape[2]

    def rate(self) -> float:
        return self.snippets * self.world / max(time.perf_counter() - self.t0, 1e-9)

    def eta(self, step: int, steps: int) -> str:
        """``elapsed ... eta ...`` of this worker's steps since it (re)started."""
        return eta(time.perf_counter() - self.t0, step - self.start_step, steps - step)


def select_on_test(cfg: Config, spec: RunSpec) -> bool:
    """best-test reproduces the papers' practice (optimistic; labelled as such in every result)."""
    return cfg.train.selection == "best-test" and bool(spec.test_domains)


def setup_worker(config: dict[str, Any], timer: Phases | None = None) -> Worker:
    """Build this worker's model, optimizer and batcher on its shard of every training domain."""
    import ray.train

    from omnivad.data.ray_datasets import collect_pools

    cfg = Config.model_validate(config["cfg"])
    spec = RunSpec.model_validate(config["spec"])
    info = harness.worker(cfg.scaling.use_gpu)
    seed_everything(spec.seed)
    corpus = Corpus.open(spec.corpus_uri, verify=cfg.corpus.verify)
    method = get_method(cfg.model.method)
    model = build_model(method, cfg, spec, corpus.feature_dim)
    pools = {}
    timer = timer if timer is not None else Phases()
    with timer.phase("data_read"):
        for d in spec.train:
            pools.update(collect_pools(ray.train.get_dataset_shard(f"train_{d}"), d))
    prepare_heads(method, model, cfg, spec, pools)  # prepare() broadcasts rank 0's choice
    model = model.to(info.device)
    optimizer = harness.build_optimizer(method.optimizer_params(model, cfg), "adam", cfg.train.lr, cfg.train.weight_decay)
    heads = model_domains(method, model, spec)
    on_gpu = {"device": info.device} if info.device.type == "cuda" else {}  # pools on the GPU: no per-step copy
    batcher = (DeviceBatcher if on_gpu else BalancedBatcher)(
        pools, list(spec.train), head_index(spec, heads), cfg.data.batch_per_class, spec.seed, info.rank, info.world,
        spec.use_all, **on_gpu)
    val_videos = load_videos(corpus, spec.val, spec.locations) if info.rank == 0 and spec.val else {}
    test_videos: dict[str, list[Video]] = {}
    if info.rank == 0 and select_on_test(cfg, spec):
        test_videos = {d: sorted(corpus.videos(d, "test"), key=lambda v: v.video_id) for d in spec.test_domains}
    if info.rank == 0:
        _log(f"[omnivad] {spec.name}: {sum(len(p.ids) for p in pools.values())} training videos on rank 0, "
             f"{sum(len(v) for v in val_videos.values())} validation videos, heads {heads}")
    tracker = open_tracker(cfg, spec.name, storage.join(cfg.storage.out, spec.name), run_params(cfg)) if info.rank == 0 else Tracker()
    return Worker(config, cfg, spec, info, method, model, optimizer, batcher, heads, val_videos, test_videos, tracker, timer)


def restore(w: Worker) -> Progress:
    """Resume from this run's latest checkpoint (same name and storage path), if any."""
    state = harness.restore()
    if state is None:
        return Progress()
    w.model.load_state_dict(state["model"])
    w.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    if w.info.rank == 0:
        _log(f"[omnivad] {w.spec.name}: resumed at step {int(state['step'])}")
    return Progress(int(state["step"]), state["best"], list(state["history"]))


def evaluate(w: Worker, progress: Progress, step: int, metrics: dict[str, Any]) -> None:
    """Rank 0: validation AUC (and test AUC under best-test) into ``metrics``; keep the best weights."""
    cfg = w.cfg
    per_domain = validate(w.method, w.model, w.val_videos, w.heads, cfg.metrics.align, cfg.train.precision) if w.val_videos else {}
    if per_domain:
        metrics["val_auc"] = float(np.mean(list(per_domain.values())))
    if select_on_test(cfg, w.spec):
        per_domain = validate(w.method, w.model, w.test_videos, w.heads, cfg.metrics.align, cfg.train.precision)
        metrics["test_auc"] = float(np.mean(list(per_domain.values()))) if per_domain else float("nan")
    val = float(np.mean(list(per_domain.values()))) if per_domain else float("nan")
    if per_domain and val > progress.best["val"]:
        progress.best = {"val": val, "step": step, "model": copy.deepcopy(w.model.state_dict())}


def checkpoint_state(w: Worker, progress: Progress) -> dict[str, Any]:
    return {
        "model": w.model.state_dict(),
        "optimizer": w.optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "step": progress.step,
        "best": progress.best,
        "history": progress.history,
        "domains": w.heads,
        "config": w.config["cfg"],
        "spec": w.config["spec"],
    }


def after_step(w: Worker, progress: Progress, logs: dict[str, float], meter: Throughput) -> None:
    """Log, evaluate and checkpoint at their cadences; every worker reports at the same steps."""
    step, train = progress.step, w.cfg.train
    evaluate_now = step % train.eval_every == 0 or step == w.spec.steps
    save_now = step % train.checkpoint_every == 0 or step == w.spec.steps
    if not (evaluate_now or save_now or step % train.log_every == 0):
        return
    metrics: dict[str, Any] = {"step": step, **{k: float(v) for k, v in logs.items()}, "snippets_per_s": meter.rate()}
    rank0 = w.info.rank == 0
    if rank0 and evaluate_now and (w.val_videos or w.test_videos):
        with w.timer.phase("validation"):
            evaluate(w, progress, step, metrics)
    if rank0:  # the final entry carries the worker's phases (engine/timing.py); the driver adds its own
        progress.history.append({**metrics, "timing": worker_timing(w.timer)} if step == w.spec.steps else metrics)
        w.tracker.log_metrics(metrics, step)
        _log(f"[omnivad] {w.spec.name} step {step}/{w.spec.steps} {meter.eta(step, w.spec.steps)} " + " ".join(
            f"{k}={v:.4g}" for k, v in metrics.items() if k != "step"))
    if evaluate_now or save_now:
        state = checkpoint_state(w, progress) if save_now and rank0 else None
        with w.timer.phase("checkpoint"):
            harness.report(metrics, state, f"step-{step:08d}" if save_now else None)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """What Ray Train runs on each worker: setup, restore, then the steps."""
    timer = Phases()
    timer.mark("start")
    w = setup_worker(config, timer)
    progress = restore(w)
    net = harness.prepare(harness.compile_model(w.model, w.cfg.train.compile), w.method.find_unused_parameters)
    hooks = harness.step_hooks(config)
    meter = Throughput(w.info.world, progress.step)
    timer.mark("loop")
    net.train()
    for step in range(progress.step, w.spec.steps):
        batch = w.batcher.batch(step).to(w.info.device)
        logs = train_step(w.method, net, w.optimizer, batch, w.cfg, w.spec)
        meter.add(batch)
        progress.step = step + 1
        harness.run_hooks(hooks, progress.step)
        after_step(w, progress, logs, meter)
    w.tracker.close()
