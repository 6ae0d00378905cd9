"""The interleaving loop (spec wocc_ws.md §3.6, §3.7, §4) for one domain, with loop checkpoints.

One code path, two executors (:class:`LocalExecutor` here, :class:`omnivad.uvad.ray_exec.RayExecutor`):
an executor trains and scores the two models; this module owns the pseudo-labels, the thresholds, the
stopping rule, the records and the checkpoints. After every loop the state (both models, the soft
labels w, the running intersections, the records) is written under ``<run>/<domain>/``; ``state.json``
is the commit point, so a killed job resumes at the loop after the last finished one.
"""

from __future__ import annotations

import io
import posixpath
import sys
import time
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from omnivad import storage
from omnivad.config import UVADConfig
from omnivad.engine.harness import build_optimizer
from omnivad.metrics import evaluate_domain
from omnivad.uvad import thresholds as th
from omnivad.uvad.data import Objects, SnippetSet
from omnivad.uvad.occ import build_occ
from omnivad.uvad.train import ObjectLoss, data_init, occ_epochs, score_objects, score_videos, ws_iterations
from omnivad.uvad.ws import build_ws

STATE = "state.json"

#: ``hook(module, loop)``, called right after loop ``loop`` of module ``module`` is committed (tests inject
#: faults with these; the product passes none).
LoopHook = Callable[[int, int], None]


@dataclass
class DomainData:
    """Everything the loop needs of one domain (no training labels; test gt for evaluation only)."""

    domain: str
    train: SnippetSet
    objects: Objects
    test: SnippetSet | None = None
    test_objects: Objects | None = None
    test_gt: list[tuple[str, np.ndarray, int]] | None = None
    train_gt: np.ndarray | None = None  # analysis only: pseudo-label precision

    @property
    def occ_dim(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def ws_dim(self) -> int:
        return int(self.train.x.shape[1])


class Executor(Protocol):
    """Trains/scores the two models. States are ``{"model": state_dict[, "opt": ...]}``; None = a fresh
    model from ``init_seed``. ``tag`` (``m<k>-l<t>``) names the loop's datasets and runs."""

    def train_occ(self, dd: DomainData, state: dict | None, w: np.ndarray, init_seed: int, seed: int,
                  tag: str) -> tuple[dict, list[float]]: ...

    def score_occ(self, dd: DomainData, state: dict, objects: Objects, tag: str) -> np.ndarray: ...

    def train_ws(self, dd: DomainData, state: dict | None, labels: np.ndarray, ahat: np.ndarray, init_seed: int,
                 seed: int, tag: str) -> tuple[dict, list[float]]: ...

    def score_ws(self, dd: DomainData, state: dict, snippets: SnippetSet, tag: str) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------- model states
def new_occ(cfg: UVADConfig, dim: int, state: dict | None, init_seed: int,
            init_x: np.ndarray | None = None) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The wOCC model and its Adamax (§5), fresh from ``init_seed`` (data-initialised on ``init_x``) or
    restored from ``state``."""
    torch.manual_seed(init_seed)
    model = build_occ(cfg.occ, dim, cfg)
    opt = build_optimizer(model.parameters(), "adamax", cfg.occ_lr)
    if state is not None:
        model.load_state_dict(state["model"])
        if state.get("opt"):
            opt.load_state_dict(state["opt"])
    elif init_x is not None:
        rng = np.random.default_rng(init_seed)
        data_init(model, init_x[rng.permutation(len(init_x))[: cfg.occ_batch]], cfg.occ_batch)
    return model, opt


def new_ws(cfg: UVADConfig, dim: int, state: dict | None, init_seed: int) -> torch.nn.Module:
    torch.manual_seed(init_seed)
    model = build_ws(cfg.ws, dim, cfg)
    if state is not None:
        model.load_state_dict(state["model"])
    return model


class LocalExecutor:
    """Everything in this process."""

    def __init__(self, cfg: UVADConfig) -> None:
        self.cfg = cfg

    def train_occ(self, dd, state, w, init_seed, seed, tag):
        model, opt = new_occ(self.cfg, dd.occ_dim, state, init_seed, dd.objects.x)
        torch.manual_seed(seed)
        losses = occ_epochs(ObjectLoss(model), opt, dd.objects.x, w, self.cfg, seed)
        return {"model": model.state_dict(), "opt": opt.state_dict()}, losses

    def score_occ(self, dd, state, objects, tag):
        model, _ = new_occ(self.cfg, dd.occ_dim, state, 0)
        return score_objects(model, objects.score_x)

    def train_ws(self, dd, state, labels, ahat, init_seed, seed, tag):
        model = new_ws(self.cfg, dd.train.x.shape[1], state, init_seed)
        torch.manual_seed(seed)
        losses = ws_iterations(model, self.cfg.ws, dd.train.ws_input(self.cfg.ws_input), labels, ahat, self.cfg, seed)
        return {"model": model.state_dict()}, losses

    def score_ws(self, dd, state, snippets, tag):
        model = new_ws(self.cfg, snippets.x.shape[1], state, 0)
        return score_videos(model, snippets.ws_input(self.cfg.ws_input), snippets.offsets)


# ---------------------------------------------------------------------------------------------- helpers
def initial_weights(cfg: UVADConfig, n_objects: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """§3.5: w ~ Beta(a, b) per object, or (code) the max of ``window`` per-frame draws (= 1 − min of 1 − w)."""
    a, b = cfg.beta
    if cfg.beta_init == "object":
        return rng.beta(a, b, size=n_objects).astype(np.float32)
    return rng.beta(a, b, size=(n_objects, window)).max(1).astype(np.float32)


def hard_object_weights(cfg: UVADConfig, w: np.ndarray) -> np.ndarray:
    """Table 4 "✗ weighted OCC" (§7, ``uvad.occ_labels=hard``): the top ⌈Q·M⌉ of the M soft labels ``w`` → 1
    (weight 0: left out of the OCC loss), the rest → 0 (weight 1)."""
    return th.hard_labels(w, th.initial_threshold(cfg.q, len(w))).astype(np.float32)


def occ_labels(cfg: UVADConfig, objects: Objects, s: np.ndarray) -> np.ndarray:
    """The wOCC labels w of the next loop from the WS snippet scores ``s``: Eq. 6 (soft, w_i = max s over the
    snippets object i covers), or (``occ_labels=hard``) objects covering a snippet of the top ⌈Q·N⌉ of ``s`` → 1,
    the rest 0."""
    if cfg.occ_labels == "hard":
        s = th.hard_labels(s, th.initial_threshold(cfg.q, len(s))).astype(np.float32)
    return objects.weights_from_snippets(s)


def evaluate_snippets(dd: DomainData, snippets: SnippetSet, scores: np.ndarray) -> float | None:
    """Frame-level test AUC of pooled test snippet scores (None without a usable test split)."""
    if not dd.test_gt:
        return None
    per_video = snippets.split(scores)
    try:
        return float(evaluate_domain(dd.test_gt, per_video, dd.domain)["auc"])
    except Exception as exc:  # noqa: BLE001 - a test split without both classes: report no AUC
        print(f"[uvad] {dd.domain}: no test AUC ({exc})", file=sys.stderr)
        return None


def precision(labels: np.ndarray, gt: np.ndarray | None) -> float | None:
    """Analysis only: share of pseudo-abnormal snippets that are truly abnormal."""
    if gt is None or labels.sum() == 0:
        return None
    return float(gt[labels == 1].mean())


def _seed(base: int, *parts: int) -> int:
    return int(np.random.SeedSequence([base, *parts]).generate_state(1)[0])


# ---------------------------------------------------------------------------------------------- checkpoints
class LoopStore:
    """``<dir>/state.json`` (commit point) + ``<dir>/ckpt-m<k>-l<t>.pt`` (weights_only-loadable tensors)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, self.root = storage.filesystem(uri)

    def load(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        path = posixpath.join(self.root, STATE)
        if not self.fs.exists(path):
            return None, None
        state = storage.read_json(self.fs, path)
        tensors = None
        if state.get("ckpt"):
            data = storage.read_bytes(self.fs, posixpath.join(self.root, state["ckpt"]))
            tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return state, tensors

    def save(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        name = f"ckpt-m{state['module']}-l{state['loop']}.pt"
        buf = io.BytesIO()
        torch.save(tensors, buf)
        storage.write_bytes_atomic(self.fs, posixpath.join(self.root, name), buf.getvalue())
        old = state.get("ckpt")
        state["ckpt"] = name
        storage.write_json_atomic(self.fs, posixpath.join(self.root, STATE), state)
        if old and old != name:
            try:
                self.fs.rm(posixpath.join(self.root, old))
            except FileNotFoundError:
                pass


def _idx(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.numpy().astype(np.int64)


def _t(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(np.asarray(a, np.int64).copy())


# ---------------------------------------------------------------------------------------------- the loop
def run_domain(dd: DomainData, cfg: UVADConfig, executor: Executor, out_uri: str, log: Any = None,
               after_loop: Sequence[LoopHook] = ()) -> dict[str, Any]:
    """Run (or resume) the interleaved training of one domain; returns its ``state`` dict with records.

    ``state["executed"]`` lists the (module, loop) pairs trained by *this* call (resume evidence);
    ``after_loop`` hooks run after each committed loop.
    """
    log = log or _log_stderr
    store = LoopStore(out_uri)
    t1 = th.initial_threshold(cfg.q, dd.train.n)
    state, tensors = _load_or_start(store, dd, cfg, t1, out_uri)
    state["executed"] = []
    if state["finished"]:
        log(f"[uvad] {dd.domain}: already finished ({len(state['modules'])} modules)")
        return state
    run = _DomainRun(dd=dd, cfg=cfg, executor=executor, store=store, state=state, t1=t1, log=log,
                     after_loop=list(after_loop), w=tensors["w"].numpy(), i_global=_idx(tensors["I_global"]))
    k, t = state["module"], state["loop"]
    while k <= cfg.max_modules:
        run.resume_module(tensors, t)
        run.module(k, t)
        if state["finished"]:
            break
        k, t = k + 1, 0
    return state


def _log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_or_start(store: LoopStore, dd: DomainData, cfg: UVADConfig, t1: int,
                   out_uri: str) -> tuple[dict[str, Any], Any]:
    """The last committed loop state of ``store``, or the state before module 1 loop 1."""
    n = dd.train.n
    state, tensors = store.load()
    if state is None:
        rng = np.random.default_rng(cfg.seed)
        window = cfg.seg_len if cfg.occ == "stg-nf" else 16
        state = {"domain": dd.domain, "n_snippets": n, "t1": t1, "module": 1, "loop": 0, "T": t1, "sizes": [],
                 "loops": [], "modules": [], "finished": False, "stopped_by": None}
        w0 = initial_weights(cfg, len(dd.objects.x), window, rng)
        if cfg.occ_labels == "hard":  # §7: the random start hard as well, Beta draws thresholded at the Q quantile
            w0 = hard_object_weights(cfg, w0)
        tensors = {"w": torch.from_numpy(w0), "occ": None,
                   "ws": None, "I_module": None, "I_global": None, "s": None}
    elif state.get("n_snippets") != n:
        raise ValueError(f"{out_uri}/{STATE}: written for {state.get('n_snippets')} training snippets, the corpus has {n}")
    return state, tensors


@dataclass
class _DomainRun:
    """One :func:`run_domain` call: its inputs, the ``state`` dict it records into, and what one loop hands
    to the next (soft labels ``w``, both models, the running intersections, the last WS scores)."""

    dd: DomainData
    cfg: UVADConfig
    executor: Executor
    store: LoopStore
    state: dict[str, Any]
    t1: int
    log: Any
    w: np.ndarray
    i_global: np.ndarray | None
    occ_state: dict | None = None
    ws_state: dict | None = None
    i_module: np.ndarray | None = None
    s_prev: np.ndarray | None = None
    after_loop: list[LoopHook] | None = None

    def resume_module(self, tensors: dict[str, Any], t: int) -> None:
        """Models, module intersection and last scores of the checkpoint when resuming inside a module
        (``t > 0``); none for a fresh module."""
        self.occ_state, self.ws_state = (tensors["occ"], tensors["ws"]) if t > 0 else (None, None)
        self.i_module = _idx(tensors["I_module"]) if t > 0 else None
        self.s_prev = tensors["s"].numpy() if (t > 0 and tensors["s"] is not None) else None

    def module(self, k: int, t: int) -> None:
        """Loops ``t+1 ..`` of module ``k``, each checkpointed, until the loop cap or convergence."""
        cfg, state = self.cfg, self.state
        init_occ, init_ws = _seed(cfg.seed, k, 0), _seed(cfg.seed, k, 1)
        converged = False
        while t < cfg.loops and not converged:
            t += 1
            rec = self._loop(k, t, init_occ, init_ws)
            state["loops"].append(rec)
            state["executed"].append([k, t])
            self.log(f"[uvad] {self.dd.domain} module {k} loop {t}: T={rec['T']} |I|={rec['intersection_module']} "
                     f"prec={_fmt(rec['precision'])} occ AUC={_fmt(rec['occ_auc'])} ws AUC={_fmt(rec['ws_auc'])} "
                     f"({rec['seconds']}s)")
            delta_s = rec["delta_s"]
            converged = cfg.converge_tol is not None and delta_s is not None and delta_s <= cfg.converge_tol
            last_loop = t >= cfg.loops or converged
            if last_loop:
                self._close_module(k, t, rec)
            # the next loop to run: a finished module hands over to a fresh one
            state["module"], state["loop"] = (k + 1, 0) if last_loop and not state["finished"] else (k, t)
            self.store.save(state, self._tensors())
            if len(state["executed"]) == 1:
                self._estimate(k, t, rec["seconds"])
            for hook in self.after_loop or []:
                hook(k, t)

    def _estimate(self, k: int, t: int, seconds: float) -> None:
        """After this call's first loop: the time left for the domain if every remaining loop runs."""
        left = (self.cfg.max_modules - k) * self.cfg.loops + (self.cfg.loops - t)
        self.log(f"[uvad] {self.dd.domain}: first loop {seconds:.1f}s; at most {left} loops left, "
                 f"about {left * seconds / 60:.1f} min more for this domain")

    def _loop(self, k: int, t: int, init_occ: int, init_ws: int) -> dict[str, Any]:
        """Loop ``t`` of module ``k``: wOCC → hard labels → WS → soft labels; returns its record."""
        dd, cfg, ex = self.dd, self.cfg, self.executor
        tic = time.time()
        tag = f"m{k}-l{t}"
        # --- wOCC step (Eq. 2) and its snippet scores
        self.occ_state, occ_losses = ex.train_occ(dd, self.occ_state, self.w, init_occ, _seed(cfg.seed, k, t, 2), tag)
        a_obj = ex.score_occ(dd, self.occ_state, dd.objects, tag)
        ahat = dd.objects.snippet_scores(a_obj, dd.train)
        a_set = th.top_set(ahat, cfg.q)
        self.i_module = a_set if self.i_module is None else np.intersect1d(self.i_module, a_set)
        # --- hard labels (Eq. 3) → WS
        # module 1 (and every module with a fixed T = T_1) rounds as the code does (§9.13)
        labels = th.hard_labels(ahat, self.state["T"], cfg.q if k == 1 or cfg.threshold == "fixed" else None)
        ahat_ws = ahat
        if cfg.cleanup:
            labels, ahat_ws = th.cleanup(labels, ahat)
        self.ws_state, ws_losses = ex.train_ws(dd, self.ws_state, labels, ahat_ws, init_ws, _seed(cfg.seed, k, t, 3), tag)
        s = ex.score_ws(dd, self.ws_state, dd.train, tag)
        # --- soft labels (Eq. 6) → wOCC of the next loop
        self.w = occ_labels(cfg, dd.objects, s)
        delta_s = float(np.abs(s - self.s_prev).mean()) if self.s_prev is not None else None
        self.s_prev = s
        return {
            "module": k, "loop": t, "T": int(self.state["T"]), "n_abnormal": int(labels.sum()),
            "top_q": int(len(a_set)), "intersection_module": int(len(self.i_module)),
            "precision": precision(labels, dd.train_gt),
            "occ_loss_first": occ_losses[0], "occ_loss_last": occ_losses[-1], "ws_loss_last": ws_losses[-1],
            "delta_s": delta_s, **evaluate_models(dd, ex, self.occ_state, self.ws_state, tag),
            "seconds": round(time.time() - tic, 2),
        }

    def _close_module(self, k: int, t: int, rec: dict[str, Any]) -> None:
        """After the last loop of module ``k``: the global intersection, the stopping rule, the next T."""
        cfg, state = self.cfg, self.state
        assert self.i_module is not None
        size_prev = None if self.i_global is None else len(self.i_global)
        self.i_global = self.i_module if self.i_global is None else np.intersect1d(self.i_global, self.i_module)
        state["sizes"].append(int(len(self.i_global)))
        stop, drop, ref = th.should_stop(state["sizes"], self.t1, cfg.stop_ratio, cfg.stop_reference)
        # Eq. 8: T_{k+1} = |I_k|; a fixed threshold (Table 4 "✗ adaptive", §7) keeps T_1 = ⌈Q·N⌉ in every module
        t_next = int(len(self.i_global)) if cfg.threshold == "adaptive" else self.t1
        state["modules"].append({
            "module": k, "T": int(state["T"]), "loops": t, "intersection": int(len(self.i_global)),
            "T_next": t_next, "drop": drop, "reference_drop": ref, "stop": bool(stop),
            "occ_auc": rec["occ_auc"], "ws_auc": rec["ws_auc"], "precision": rec["precision"],
            "prev_intersection": size_prev,
        })
        state["T"] = t_next
        if stop or k >= cfg.max_modules or len(self.i_global) == 0:
            state["finished"] = True
            state["stopped_by"] = "rule" if stop else "module cap" if k >= cfg.max_modules else "empty intersection"

    def _tensors(self) -> dict[str, Any]:
        assert self.s_prev is not None
        return {"w": torch.from_numpy(np.asarray(self.w, np.float32)), "occ": self.occ_state, "ws": self.ws_state,
                "I_module": _t(self.i_module), "I_global": _t(self.i_global), "s": torch.from_numpy(self.s_prev)}


def evaluate_models(dd: DomainData, executor: Executor, occ_state: dict, ws_state: dict, tag: str) -> dict[str, float | None]:
    """Test AUC of both models (test gt is read for evaluation only)."""
    if dd.test is None or not dd.test_gt:
        return {"occ_auc": None, "ws_auc": None}
    occ_obj = executor.score_occ(dd, occ_state, dd.test_objects, tag + "-test")
    occ_snip = dd.test_objects.snippet_scores(occ_obj, dd.test)
    ws_snip = executor.score_ws(dd, ws_state, dd.test, tag + "-test")
    return {"occ_auc": evaluate_snippets(dd, dd.test, occ_snip), "ws_auc": evaluate_snippets(dd, dd.test, ws_snip)}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"

