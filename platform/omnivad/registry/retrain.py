"""Scheduled retraining: bring the registry's current model up to date with the corpus.

:func:`retrain` compares the corpus with the current version (:func:`detect_change`) and then

- no current model: trains a fresh E1 model on every domain (fold 0) and promotes it;
- new domains: adds a head per new domain (copied from the old head that scores the new domain's
  training videos most abnormal, MDVAD A14's rule), warm-starts from the current model, trains on every
  domain with balanced batches and promotes only when the gate (:func:`promotion_gate`) passes;
- same domains, new corpus fingerprint (new videos): the same warm-started retrain with the existing
  heads, gated the same way;
- otherwise prints "nothing new" and leaves the registry file untouched.

The gate decides on **validation**: the candidate and the current model are both scored on the candidate's
validation splits (the E1 fold-0 carve-out of each training set, the same videos the engine's ``best-val``
selection uses), per domain AUC. Test metrics are still computed and recorded (``test_metrics``, labelled
test in the registry and the messages) but the gate never reads them: a promotion decision made with test
labels would make the registry's recorded test numbers selection-biased.
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from omnivad import storage
from omnivad.config import Config
from omnivad.errors import OmnivadError
from omnivad.protocols import protocol_splits
from omnivad.registry.registry import (
    DomainMetrics,
    ModelVersion,
    RegistryError,
    detect_change,
    load_registry,
    now_iso,
    promotion_gate,
    read_registry_bytes,
    registry_uri,
    save_registry,
    snapshot_of,
)


@dataclass
class RetrainOutcome:
    action: str  # "nothing-new" | "promoted" | "rejected"
    message: str
    version: ModelVersion | None = None
    registry_uri: str = ""


def _say(msg: str) -> None:
    print(msg, flush=True)


def retrain(cfg: Config, tolerance: float = 1.0, say: Callable[[str], None] = _say) -> RetrainOutcome:
    """One scheduled retrain against ``cfg.corpus.uri``, registry under ``cfg.storage.out``."""
    from omnivad.protocols.runner import ensure_corpus, ensure_ray

    corpus = ensure_corpus(cfg)
    domains = cfg.corpus.domains or corpus.domains
    for d in domains:
        if d not in corpus.domains:
            raise ValueError(f"corpus.domains: {d!r} is not in {corpus.uri} ({', '.join(corpus.domains)})")
    reg_uri = registry_uri(cfg.storage.out)
    before = read_registry_bytes(reg_uri)
    reg = load_registry(reg_uri)
    snap = snapshot_of(corpus, domains)
    change = detect_change(reg, snap)
    if change.kind == "nothing":
        msg = f"nothing new: {change.reason}"
        say(msg)
        return RetrainOutcome("nothing-new", msg, reg.current_version, reg_uri)

    cur = reg.current_version
    version = reg.next_version()
    say(_plan_message(change, version, cur, snap, domains))
    ensure_ray(cfg)
    heads = list(cur.domains) + change.new_domains if cur is not None else list(domains)
    model_uri, val_ids, locations = _train(cfg, corpus, domains, heads, version, cur)
    entry = _candidate(cfg, corpus, domains, heads, version, cur, snap, tolerance, model_uri, val_ids, locations)
    save_registry(reg_uri, reg.record(entry), expect=before)
    table = ", ".join(f"{d} {100 * m.auc:.2f}" for d, m in entry.val_metrics.items())
    test_table = ", ".join(f"{d} {100 * m.auc:.2f}" for d, m in entry.test_metrics.items())
    if entry.status == "promoted":
        msg = f"{version} promoted (validation AUC {table}); current is now {version}. {entry.reason}. Test AUC (recorded, not gated): {test_table}"
    else:
        msg = (f"{version} rejected, keeping {cur.version}: {entry.reason}. Candidate validation AUC: {table}; "
               f"test AUC (recorded, not gated): {test_table}")
    say(msg)
    return RetrainOutcome(entry.status, msg, entry, reg_uri)


def _plan_message(change: Any, version: str, cur: ModelVersion | None, snap: Any, domains: list[str]) -> str:
    if change.kind == "initial":
        return f"{version}: no current model; training a fresh E1 model on {', '.join(domains)}"
    if change.kind == "new-domains":
        return f"{version}: new domain(s) {', '.join(change.new_domains)}; warm-starting from {cur.version} (heads {', '.join(cur.domains)})"
    return f"{version}: corpus changed ({cur.snapshot.fingerprint} -> {snap.fingerprint}); warm-starting from {cur.version}"


def _candidate(cfg: Config, corpus: Any, domains: list[str], heads: list[str], version: str, cur: ModelVersion | None,
               snap: Any, tolerance: float, model_uri: str, val_ids: dict[str, list[str]],
               locations: dict[str, dict[str, tuple[str, str]]]) -> ModelVersion:
    """The trained candidate as a registry entry: validation metrics (gated against the current model's on the same
    videos), test metrics (recorded, never gated) and the promotion decision."""
    from omnivad.engine.checkpoint import read_model
    from omnivad.engine.evaluate import evaluate_model, evaluate_validation

    def val_of(uri: str) -> dict[str, DomainMetrics]:
        got = evaluate_validation(uri, corpus, val_ids, cfg.metrics.align, locations)
        return {d: DomainMetrics(auc=m["auc"], ap=m["ap"]) for d, m in got.items()}

    val_metrics = val_of(model_uri)
    tested = [d for d in domains if "test" in corpus.splits(d)]
    result = evaluate_model(model_uri, corpus, tested, concurrency=1, align=cfg.metrics.align)
    test_metrics = {d: DomainMetrics(auc=float(m["auc"]), ap=float(m["ap"])) for d, m in result["per_domain"].items()}
    if cur is None:
        decision = promotion_gate({}, val_metrics, tolerance)
    else:
        # the current model on the same validation videos (its own heads only): a like-for-like baseline
        baseline = {d: m for d, m in val_of(cur.model_uri).items() if d in cur.domains}
        decision = promotion_gate(baseline, val_metrics, tolerance)
    return ModelVersion(
        version=version, model_uri=model_uri, method=read_model(model_uri)["method"], domains=heads, snapshot=snap,
        val_metrics=val_metrics, test_metrics=test_metrics, parent=cur.version if cur else None, created=now_iso(),
        status="promoted" if decision.promote else "rejected",
        reason=(decision.reason if cur is None else f"{decision.reason} (vs {cur.version})"),
        steps=cfg.train.steps, seed=cfg.train.seed,
    )


def _train(
    cfg: Config, corpus: Any, domains: list[str], heads: list[str], version: str, parent: ModelVersion | None
) -> tuple[str, dict[str, list[str]], dict[str, dict[str, tuple[str, str]]]]:
    """Fit ``version`` on the E1 split (fold 0) of every domain; returns its ``model.pt`` URI, the split's
    validation ids (what the gate compares on) and where merged videos are stored.

    Runs live under ``<out>/registry/runs/<config hash>/`` (config hash includes the corpus fingerprint),
    named ``<version>-from-<parent>``: an interrupted retrain rerun on the same data resumes.
    """
    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.engine.spec import RunSpec
    from omnivad.engine.trainer import fit
    from omnivad.protocols.runner import config_hash

    bench = build_benchmark(corpus, cfg.benchmark, domains)
    root = storage.join(cfg.storage.out, "registry", "runs", config_hash(cfg, corpus.fingerprint(), bench))
    bench.save(storage.join(root, "benchmark.json"))
    split = protocol_splits(bench, "E1", 0)
    name = f"{version}-from-{parent.version if parent else 'scratch'}"
    init = None
    if parent is not None:
        init = storage.join(root, name + "-init", "model.pt")
    locations = bench.locations(split.train, split.val)
    if parent is not None:
        _write_warm_start(cfg, corpus, parent, heads, split.train, init, locations)
    run_cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"out": root})})
    spec = RunSpec(
        name=name, corpus_uri=corpus.uri, train=split.train, val=split.val, head_domains=heads, locations=locations,
        steps=cfg.train.steps, seed=cfg.train.seed, init_model=init,
    )
    return fit(run_cfg, spec), split.val, locations


def _write_warm_start(cfg: Config, corpus: Any, parent: ModelVersion, heads: list[str], train: dict[str, list[str]], uri: str,
                      locations: dict[str, dict[str, tuple[str, str]]] | None = None) -> None:
    """The parent's weights with a head added for every new domain, as a ``model.pt`` whose domains are
    ``heads`` (what :func:`omnivad.engine.train_loop.build_model` loads)."""
    from omnivad.engine import checkpoint as ckpt
    from omnivad.engine.evaluate import load_model

    fs, path = storage.filesystem(uri)
    if fs.exists(path):
        return
    payload = ckpt.read_model(parent.model_uri)
    if payload["method"] != cfg.model.method:
        raise RegistryError(
            f"model.method is {cfg.model.method!r} but current version {parent.version} is {payload['method']!r}: "
            "a warm start needs the same method (retrain into a new --out to switch methods)"
        )
    method, model = load_model(payload)
    for d in heads:
        if d not in (method.head_domains(model) or []):
            init = _most_similar_head(method, model, corpus, d, train.get(d, []), locations=locations)
            model.add_domain(d, init_from=init)
    if (method.head_domains(model) or []) != heads:
        raise RegistryError(f"warm start from {parent.version}: heads {method.head_domains(model)} != expected {heads}")
    ckpt.write_model(uri, {**payload, "model": model.state_dict(), "domains": list(heads),
                           "selected": f"warm-start:{parent.version}", "spec": {}, "history": []})


def _most_similar_head(method: Any, model: Any, corpus: Any, domain: str, ids: list[str], limit: int = 32,
                       locations: dict[str, dict[str, tuple[str, str]]] | None = None) -> str | None:
    """The existing head that scores ``domain``'s training videos most abnormal on average (the method's
    ``most_similar_head``, A14), or None (a fresh head): a method without per-domain heads, or no training videos."""
    import torch

    from omnivad.engine.train_loop import load_videos

    if not ids or not method.head_domains(model):
        return None
    videos = [torch.from_numpy(v.features.transpose(1, 0, 2).copy())[None]  # (1, K, T, C)
              for v in load_videos(corpus, {domain: ids[:limit]}, locations)[domain]]
    return method.most_similar_head(model, videos) if videos else None


# --------------------------------------------------------------------------------------------------
# Command line (jobs/retrain.py)


_sleep = time.sleep  # module-level so tests can swap them
_clock = time.monotonic
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")


def parse_duration(text: str, flag: str = "--every") -> float:
    """Seconds in a duration such as ``30s``, ``10m``, ``6h``, ``1d``, ``1h30m`` or ``1.5h`` (a bare number
    is seconds). Errors name ``flag`` and the bad value."""
    s = str(text).strip().lower()
    hint = "expected a duration such as 30s, 10m, 6h or 1d"
    try:
        seconds = float(s)
    except ValueError:
        parts = _DURATION_RE.findall(s)
        if not parts or "".join(n + u for n, u in parts) != s:
            raise ValueError(f"{flag}: {hint}, got {text!r}") from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{flag}: {hint} greater than zero, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{int(seconds // n)}{unit}"
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"


def run_every(
    run_once: Callable[[], RetrainOutcome],
    every: float,
    *,
    max_runs: int | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    say: Callable[[str], None] = _say,
) -> int:
    """Call ``run_once`` every ``every`` seconds (measured from the start of the previous run; a run that
    overruns is followed at once) until ``max_runs`` runs or Ctrl-C / SIGTERM (see :func:`_sigterm_as_interrupt`).

    A run that fails with a data or configuration error is reported and the loop goes on (the next tick may
    find the corpus fixed). Returns the exit status: 0, or 1 when the last run failed.
    """
    if every <= 0:
        raise ValueError(f"--every: expected a duration greater than zero, got {every}")
    if max_runs is not None and max_runs < 1:
        raise ValueError(f"--max-runs: expected >= 1, got {max_runs}")
    sleep = sleep or _sleep
    clock = clock or _clock
    runs, failed = 0, False
    try:
        while True:
            start = clock()
            runs += 1
            say(f"[retrain] run {runs} ({time.strftime('%Y-%m-%d %H:%M:%S')})")
            try:
                outcome = run_once()
                failed = False
                say(f"[retrain] run {runs}: {outcome.action}")
            except (OmnivadError, FileNotFoundError, ValueError) as exc:
                failed = True
                say(f"[retrain] run {runs} failed: {exc}")
            if max_runs is not None and runs >= max_runs:
                say(f"[retrain] stopping after {runs} run(s) (--max-runs {max_runs})")
                return 1 if failed else 0
            wait = start + every - clock()
            if wait <= 0:
                say(f"[retrain] run {runs} took longer than --every {format_duration(every)}; starting the next run now")
                continue
            say(f"[retrain] next run in {format_duration(wait)}")
            sleep(wait)
    except KeyboardInterrupt:
        say(f"[retrain] interrupted; stopping after {runs} run(s)")
        return 1 if failed else 0


class _sigterm_as_interrupt:
    """While active, SIGTERM (``kubectl delete``, ``docker stop``) raises KeyboardInterrupt in the main thread,
    so ``--every`` stops the same way as on Ctrl-C."""

    def __enter__(self) -> _sigterm_as_interrupt:
        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            pass
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def add_retrain_args(p: argparse.ArgumentParser) -> None:
    from omnivad.cli_args import add_preset_arg

    p.add_argument("--config", help="YAML/JSON config file")
    add_preset_arg(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--corpus", help="corpus URI (path or s3://)")
    p.add_argument("--out", help="storage root (path or s3://); the registry is <out>/registry/registry.json")
    p.add_argument("--steps", type=int, help="training steps of a retrain")
    p.add_argument("--seed", type=int, help="training seed (train.seed)")
    p.add_argument("--tolerance", type=float, default=1.0,
                   help="largest AUC drop (in points, 1.0 = 0.01 AUC) any existing domain may take (default 1.0)")
    p.add_argument("--every", metavar="DURATION",
                   help="keep running: one retrain every DURATION (30s, 10m, 6h, 1d; counted from the start of "
                        "the previous run) until Ctrl-C or SIGTERM")
    p.add_argument("--max-runs", type=int, metavar="N", help="with --every: stop after N runs (default: never)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    # fields config_from_args reads that a retrain does not expose (always E1, fold 0)
    p.set_defaults(protocol=None, method=None, ac=None, folds=None, workers=None, use_gpu=None, targets=None)


def retrain_main(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.cli_args import config_from_args

    if args.tolerance < 0:
        raise ValueError(f"--tolerance: expected >= 0 AUC points, got {args.tolerance}")
    every = parse_duration(args.every, "--every") if getattr(args, "every", None) is not None else None
    max_runs = getattr(args, "max_runs", None)
    if max_runs is not None:
        if every is None:
            raise ValueError("--max-runs: only used with --every")
        if max_runs < 1:
            raise ValueError(f"--max-runs: expected >= 1, got {max_runs}")
    cfg = config_from_args(args)
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    if getattr(args, "demo_profile", False):
        print("[omnivad] demo profile: synthetic demo corpus (give --config or --corpus for the paper's defaults)",
              file=sys.stderr)
    if every is None:
        retrain(cfg, tolerance=args.tolerance)
        return 0
    _say(f"[retrain] every {format_duration(every)}: corpus {cfg.corpus.uri}, registry {registry_uri(cfg.storage.out)}"
         " (Ctrl-C or SIGTERM stops)")
    with _sigterm_as_interrupt():
        return run_every(lambda: retrain(cfg, tolerance=args.tolerance), every, max_runs=max_runs)
