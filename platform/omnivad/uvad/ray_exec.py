"""The Ray executor: one long-lived Ray Train worker group runs the domains in parallel.

One :func:`omnivad.engine.harness.launch` per job (not per model): ``W = min(uvad.parallel_domains, pending
domains, free CPUs / scaling.cpus_per_worker)`` workers, worker ``r`` running the pending domains ``r, r+W, ..``
one after the other. Inside a worker a domain's whole interleaving (every loop's wOCC and WS training and
scoring) runs in that process with the in-process executor, so the soft labels w and the hard labels
(l, â) pass between the two models in memory, with no new launch, dataset or checkpoint round trip per
model. The domain's data comes from the object store (``ray.put`` by the driver, which is the only
process that reads the corpus). Each loop is committed to ``<run>/<domain>/state.json`` by the worker
(the same :class:`omnivad.uvad.interleave.LoopStore` as the local run), so a killed job resumes after
its last finished loop; the driver reads the records back from there.

One worker per domain: the models are small (a C-dim AE/flow and the WS head), so a domain does not
gain from DDP across workers; ``scaling.workers`` is not used here.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from omnivad import storage
from omnivad.config import Config, UVADConfig
from omnivad.engine import harness
from omnivad.uvad.interleave import DomainData, LocalExecutor, LoopHook, LoopStore, run_domain


def _log(msg: str) -> None:
    """Through logging, as the engine's workers do: Ray Train routes worker logging to the driver once (its
    patched ``print`` echoed every line twice)."""
    logging.getLogger("omnivad.uvad").info(msg)


def domains_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: run (or resume) this rank's share of the domains, each loop committed to storage."""
    import ray

    info = harness.worker(False)
    cfg = UVADConfig.model_validate(config["uvad"])
    torch.set_num_threads(max(1, int(config["threads"])))
    done = []
    for domain, ref, uri in config["domains"][info.rank :: info.world]:
        dd: DomainData = ray.get(ref)
        run_domain(dd, cfg, LocalExecutor(cfg), uri, _log, after_loop=config["after_loop"])
        done.append(domain)
    harness.report({"rank": info.rank, "domains": done})  # once per worker, at the end: a barrier


def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a daemon thread while the main thread waits: signals stay with the main
    thread's handlers (the job's clean stop, :func:`omnivad.signals.install_signal_handlers`) instead of the
    trainer's own SIGINT handler, which Ray Train installs only when ``fit`` runs in the main thread. An
    exception of ``fn`` is raised here; a signal raises in the main thread and the thread dies with Ray."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="uvad-worker-group", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def parallel_domains(cfg: Config, pending: int) -> int:
    """How many domains run at once: the cap, the pending domains and the free CPUs allow."""
    import ray

    free = ray.available_resources().get("CPU", 1.0)
    by_cpu = max(1, math.floor(free / cfg.scaling.cpus_per_worker))
    cap = cfg.uvad.parallel_domains or by_cpu
    return max(1, min(cap, pending, by_cpu))


def run_domains_on_ray(cfg: Config, run: str, data: dict[str, DomainData],
                       after_loop: Sequence[LoopHook] = ()) -> dict[str, dict[str, Any]]:
    """Run the unfinished domains of ``data`` on one worker group; returns every domain's committed state
    (``executed``: the loops this call trained, ``[]`` for a domain that was already finished)."""
    import ray

    states: dict[str, dict[str, Any]] = {}
    pending = []
    for d in data:
        state, _ = LoopStore(storage.join(run, d)).load()
        if state is not None and state["finished"]:
            states[d] = {**state, "executed": []}
            _log(f"[uvad] {d}: already finished ({len(state['modules'])} modules)")
        else:
            pending.append(d)
    if pending:
        workers = parallel_domains(cfg, len(pending))
        _log(f"[uvad] Ray: {len(pending)} domain(s) on {workers} worker(s) of one worker group")
        group = cfg.model_copy(update={"scaling": cfg.scaling.model_copy(update={"workers": workers})})
        plan = [(d, ray.put(data[d]), storage.join(run, d)) for d in pending]
        in_thread(harness.launch, domains_loop, {"uvad": cfg.uvad.model_dump(mode="json"), "domains": plan,
                                                 "threads": cfg.scaling.cpus_per_worker, "after_loop": list(after_loop)},
                  group, storage.join(run, "ray"), name="domains", keep_checkpoints=None)
        for d in pending:
            state, _ = LoopStore(storage.join(run, d)).load()
            if state is None:
                raise RuntimeError(f"uvad {d}: the Ray worker group ended without committing a loop")
            states[d] = state
    return {d: states[d] for d in data}
