"""The one Ray Train harness: every training run of the engine, zxVAD and UVAD goes through it.

Driver side: :func:`launch` starts (or resumes) a ``TorchTrainer`` run under ``<storage_uri>/<name>`` and
:func:`final_state` reads the state dict of the checkpoint it ended with (what callers select from).
Worker side: :func:`worker` (rank, world size, device), :func:`restore` (the latest checkpoint's state, or
``None`` on a fresh run), :func:`prepare` (``ray.train.torch.prepare_model``: DDP when distributed),
:func:`run_hooks` (the optional per-step callbacks a caller passed to :func:`launch`) and :func:`report`
(metrics, plus rank 0's state as a checkpoint). :func:`build_optimizer` is shared with the local loops.

A run launched again with the same ``storage_uri`` and ``name`` resumes from its latest checkpoint, and
``max_failures`` lets Ray Train restart killed workers from it within the same launch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from omnivad import storage
from omnivad.engine import checkpoint as ckpt

HOOKS_KEY = "_step_hooks"
StepHook = Callable[[int], None]


def build_optimizer(params: Iterable[Any], name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """``adam`` or ``adamax`` over ``params`` (torch's defaults unless given); Adam is the fused (one-kernel)
    implementation when every parameter is on a GPU (CPU runs keep torch's default, bit for bit)."""
    kinds = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax}
    if name not in kinds:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(kinds)})")
    params = list(params)
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    extra: dict[str, Any] = {}
    if name == "adam" and tensors and all(t.is_cuda for t in tensors):
        extra["fused"] = True
    return kinds[name](params, lr=lr, betas=betas, weight_decay=weight_decay, **extra)


def compile_model(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``train.compile``: compile ``model``'s forward in place (``nn.Module.compile``), so the model keeps its
    class (the methods' ``unwrap_as``) and its state dict keys; the model itself when not ``enabled``."""
    if enabled:
        model.compile()
    return model


# ------------------------------------------------------------------------------------------------- driver
def scaling_config(cfg: Any) -> Any:
    """Ray Train's ``ScalingConfig`` from the ``scaling`` section."""
    import ray.train

    resources: dict[str, float] = {"CPU": cfg.scaling.cpus_per_worker, **cfg.scaling.resources_per_worker}
    if cfg.scaling.use_gpu:
        resources["GPU"] = cfg.scaling.gpus_per_worker or 1.0
    return ray.train.ScalingConfig(
        num_workers=cfg.scaling.workers, use_gpu=cfg.scaling.use_gpu, resources_per_worker=resources
    )


def launch(
    loop: Callable[[dict[str, Any]], None],
    config: dict[str, Any],
    cfg: Any,
    storage_uri: str,
    name: str = "train",
    datasets: dict[str, Any] | None = None,
    split_datasets: bool = True,
    max_failures: int = 0,
    keep_checkpoints: int | None = 2,
    callbacks: list[Any] | None = None,
    step_hooks: Sequence[StepHook] | None = None,
) -> Any:
    """Run ``loop(config)`` on ``cfg.scaling.workers`` Ray Train workers (gloo on CPU, NCCL with
    ``scaling.use_gpu``) under ``<storage_uri>/<name>``; returns Ray Train's ``Result``.

    ``datasets`` are split across workers (``split_datasets``) or given whole to each (one worker: always whole,
    so Ray Data starts no split coordinator per dataset: the same rows, seconds less); ``callbacks`` are Ray
    Train user callbacks (e.g. forwarding reports to Ray Tune); ``step_hooks`` are callables ``hook(step)``
    each worker calls after every optimizer step (:func:`run_hooks`; tests inject faults with them).
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    fs, path = storage.filesystem(storage_uri)
    run_config = ray.train.RunConfig(
        name=name,
        storage_path=path,
        storage_filesystem=storage.arrow_filesystem(fs),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=keep_checkpoints),
        failure_config=ray.train.FailureConfig(max_failures=max_failures),
        callbacks=callbacks,
    )
    trainer = TorchTrainer(
        loop,
        train_loop_config={**config, HOOKS_KEY: list(step_hooks or [])},
        torch_config=TorchConfig(backend="nccl" if cfg.scaling.use_gpu else "gloo"),
        scaling_config=scaling_config(cfg),
        run_config=run_config,
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split="all" if split_datasets and cfg.scaling.workers > 1 else []),
    )
    return trainer.fit()


def final_state(result: Any, what: str) -> dict[str, Any]:
    """The state dict of the checkpoint a run ended with (its latest); ``what`` names the run in the error."""
    if result.checkpoint is None:
        raise RuntimeError(f"{what}: finished without a checkpoint")
    with result.checkpoint.as_directory() as d:
        return ckpt.load_state(d)


# ------------------------------------------------------------------------------------------------- worker
@dataclass(frozen=True)
class WorkerInfo:
    rank: int
    world: int
    device: torch.device


def worker(use_gpu: bool) -> WorkerInfo:
    """This worker's rank, the world size and its device (CPU unless ``use_gpu``)."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    device = ray.train.torch.get_device() if use_gpu else torch.device("cpu")
    return WorkerInfo(ctx.get_world_rank(), ctx.get_world_size(), device)


def restore() -> dict[str, Any] | None:
    """The state of this run's latest checkpoint, or ``None`` when the run starts fresh."""
    import ray.train

    restored = ray.train.get_checkpoint()
    if restored is None:
        return None
    with restored.as_directory() as d:
        return ckpt.load_state(d)


def prepare(model: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` (already on its device) ready for distributed training: DDP-wrapped when there are several
    workers, itself otherwise. Keep the unwrapped ``model`` for attribute access and state dicts."""
    import ray.train.torch

    return ray.train.torch.prepare_model(
        model, move_to_device=False, parallel_strategy_kwargs={"find_unused_parameters": find_unused_parameters}
    )


def step_hooks(config: dict[str, Any]) -> list[StepHook]:
    """The per-step callbacks :func:`launch` passed to the workers."""
    return list(config.get(HOOKS_KEY) or [])


def run_hooks(hooks: Sequence[StepHook], step: int) -> None:
    """Call every hook with the number of optimizer steps done."""
    for hook in hooks:
        hook(step)


def report(metrics: dict[str, Any], state: dict[str, Any] | None = None, dir_name: str | None = None) -> None:
    """Report ``metrics`` (every worker calls it at the same steps: it is a barrier) and, where ``state`` is
    given (rank 0), checkpoint it (``state.pt``) in ``dir_name`` (Ray Train's default name when ``None``)."""
    import ray.train

    if state is None:
        ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=dir_name)
        return
    with tempfile.TemporaryDirectory(prefix="omnivad-ckpt-") as tmp:
        ckpt.save_state(state, tmp)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp), checkpoint_dir_name=dir_name)
