"""UVAD job orchestration: per-domain interleaved runs, records, results.json and results.md.

Each domain is its own unsupervised problem (its own N, T_1 = ⌈Q·N⌉, thresholds and stopping point).
The run directory ``<out>/uvad-<occ>-<ws>-<hash>/`` depends on the config and the corpus fingerprint,
so running the same command again resumes (or reuses) the same run.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import sys
from collections.abc import Sequence
from typing import Any

from omnivad import storage
from omnivad.config import Config, dump
from omnivad.corpus.format import Corpus
from omnivad.protocols.runner import check_corpus_uri, ensure_corpus, selected_domains
from omnivad.tracking import log_job
from omnivad.uvad.data import load_snippets, pose_objects, snippet_objects, test_videos, train_snippet_gt
from omnivad.uvad.thresholds import initial_threshold
from omnivad.uvad.interleave import DomainData, LocalExecutor, LoopHook, run_domain


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def domain_data(corpus: Corpus, domain: str, cfg: Config, analysis: bool = True) -> DomainData:
    """Training snippets (features only), wOCC objects, and the test split of one domain."""
    u = cfg.uvad
    crops = u.ws_input == "crops"
    train = load_snippets(corpus, domain, "train", keep_crops=crops)
    if train.n == 0:
        raise ValueError(f"corpus {corpus.uri}: domain {domain!r} has no training snippets")
    has_test = "test" in corpus.splits(domain)
    test = load_snippets(corpus, domain, "test", keep_crops=crops) if has_test else None
    if u.occ == "stg-nf":
        from omnivad.corpus.poses import read_poses

        objects = pose_objects(read_poses(corpus.uri, domain, "train"), train, u)
        test_obj = pose_objects(read_poses(corpus.uri, domain, "test"), test, u, flip=False) if test else None
        if len(objects.x) == 0:
            raise ValueError(f"corpus {corpus.uri}: domain {domain!r}: no pose window of uvad.seg_len={u.seg_len} frames")
    else:
        objects = snippet_objects(train)
        test_obj = snippet_objects(test) if test else None
    return DomainData(
        domain=domain, train=train, objects=objects, test=test, test_objects=test_obj,
        test_gt=test_videos(corpus, domain) if test else None,
        train_gt=train_snippet_gt(corpus, domain, train) if analysis else None,
    )


def run_name(cfg: Config, fingerprint: str, domains: list[str]) -> str:
    u = cfg.uvad.model_dump(mode="json", exclude={"executor"})
    h = hashlib.sha256(json.dumps([u, fingerprint, domains], sort_keys=True).encode()).hexdigest()[:10]
    return f"uvad-{cfg.uvad.occ}-{cfg.uvad.ws}-{h}"


def run_uvad(cfg: Config, analysis: bool = True, after_loop: Sequence[LoopHook] = ()) -> dict[str, Any]:
    """Run (or resume) UVAD on every domain of ``cfg.corpus``; write and return the results.

    ``after_loop`` hooks run after each committed loop (in the Ray workers with ``uvad.executor=ray``)."""
    check_corpus_uri(cfg)  # before Ray starts
    if cfg.uvad.executor == "ray":
        from omnivad.signals import install_signal_handlers
        from omnivad.protocols.runner import ensure_ray

        ensure_ray(cfg)
        install_signal_handlers()  # again: ray.init installed its own (a native stack dump on SIGTERM)
    corpus = ensure_corpus(cfg)
    domains = selected_domains(cfg, corpus)
    run = storage.join(cfg.storage.out, run_name(cfg, corpus.fingerprint(), domains))
    fs, root = storage.filesystem(run)
    storage.write_json_atomic(fs, storage.join(root, "config.json"), dump(cfg))
    log(f"[uvad] run {run}: occ={cfg.uvad.occ} ws={cfg.uvad.ws} Q={cfg.uvad.q} executor={cfg.uvad.executor} "
        f"domains={','.join(domains)}")
    data = {}
    for d in domains:
        data[d] = dd = domain_data(corpus, d, cfg, analysis)
        log(f"[uvad] {d}: {dd.train.n} training snippets in {len(dd.train.video_ids)} videos, "
            f"{len(dd.objects.x)} wOCC objects, T_1={initial_threshold(cfg.uvad.q, dd.train.n)}")
    log(plan_line(cfg, len(domains)))
    states = run_domains(cfg, run, data, after_loop)
    executed = {d: s.pop("executed") for d, s in states.items()}
    per_domain = {d: summarize(s) for d, s in states.items()}
    result = {"run": run, "config": dump(cfg), "corpus_fingerprint": corpus.fingerprint(), "per_domain": per_domain,
              "executed": executed}
    table = format_tables(per_domain)
    storage.write_json_atomic(fs, storage.join(root, "results.json"), result)
    storage.write_bytes_atomic(fs, storage.join(root, "results.md"), (table + "\n").encode())
    log_job(cfg, posixpath.basename(run.rstrip("/")), run, {"occ": cfg.uvad.occ, "ws": cfg.uvad.ws, "q": cfg.uvad.q},
            [], {"per_domain": per_domain})
    result["table"] = table
    return result


def plan_line(cfg: Config, n_domains: int) -> str:
    u = cfg.uvad
    how = ("in parallel on Ray (at most " + (str(u.parallel_domains) if u.parallel_domains else "one per free CPU")
           + " at once)") if u.executor == "ray" else "one after the other, in-process"
    return (f"[uvad] plan: {n_domains} domain(s) x up to {u.max_modules} modules x {u.loops} loops = at most "
            f"{n_domains * u.max_modules * u.loops} loops, domains {how}; each domain logs its time estimate "
            "after its first loop")


def run_domains(cfg: Config, run: str, data: dict[str, DomainData],
                after_loop: Sequence[LoopHook]) -> dict[str, dict[str, Any]]:
    """Every domain's final state, by the configured executor."""
    if cfg.uvad.executor == "ray":
        from omnivad.uvad.ray_exec import run_domains_on_ray

        return run_domains_on_ray(cfg, run, data, after_loop)
    executor = LocalExecutor(cfg.uvad)
    return {d: run_domain(dd, cfg.uvad, executor, storage.join(run, d), log, after_loop) for d, dd in data.items()}


def summarize(state: dict[str, Any]) -> dict[str, Any]:
    """Stopping-point numbers (last loop of the last module) and, labelled, best-over-training numbers."""
    loops, modules = state["loops"], state["modules"]
    last = loops[-1] if loops else {}

    def best(key: str) -> dict[str, Any] | None:
        vals = [r for r in loops if r.get(key) is not None]
        if not vals:
            return None
        r = max(vals, key=lambda r: r[key])
        return {"auc": r[key], "module": r["module"], "loop": r["loop"]}

    return {
        "n_snippets": state["n_snippets"], "t1": state["t1"], "finished": state["finished"],
        "stopped_by": state["stopped_by"], "modules_run": len(modules),
        "stopping_point": {"module": last.get("module"), "loop": last.get("loop"),
                           "occ_auc": last.get("occ_auc"), "ws_auc": last.get("ws_auc")},
        "first_occ_auc": loops[0].get("occ_auc") if loops else None,
        "best_over_training_oracle": {"occ": best("occ_auc"), "ws": best("ws_auc")},
        "modules": modules, "loops": loops,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def format_tables(per_domain: dict[str, Any]) -> str:
    lines = []
    for d, r in per_domain.items():
        lines += [f"### {d} (N={r['n_snippets']}, T_1={r['t1']}, stopped by {r['stopped_by']})", "",
                  "| module | loops | T_k | intersection (T_k+1) | drop | pseudo-label precision* | wOCC AUC | WS AUC |",
                  "|---|---|---|---|---|---|---|---|"]
        for m in r["modules"]:
            lines.append(f"| {m['module']} | {m['loops']} | {m['T']} | {m['intersection']} | "
                         f"{'-' if m['drop'] is None else m['drop']} | {_pct(m['precision'])} | "
                         f"{_pct(m['occ_auc'])} | {_pct(m['ws_auc'])} |")
        sp, ob = r["stopping_point"], r["best_over_training_oracle"]
        lines += ["", f"Stopping point (module {sp['module']}, loop {sp['loop']}): wOCC AUC {_pct(sp['occ_auc'])}, "
                      f"WS AUC {_pct(sp['ws_auc'])}; first wOCC (module 1, loop 1): {_pct(r['first_occ_auc'])}.",
                  "Best over training (oracle, selected on test labels, for comparison with the paper only): "
                  f"wOCC {_pct(ob['occ']['auc']) if ob['occ'] else '-'}, WS {_pct(ob['ws']['auc']) if ob['ws'] else '-'}.",
                  "*precision of the module's last pseudo-labels against training gt, analysis only "
                  "(never used in training).", ""]
    lines.append("Frame-level ROC-AUC (%) on each domain's test split.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- job CLI
#: Applied under the defaults when the job gets neither --config nor --corpus (the demo corpus): a few
#: minutes on 2 CPUs instead of 6 loops x 500 WS iterations per module.
#: The demo runs in-process (``uvad.executor=local``): its one domain gains nothing from Ray's worker group.
#: Its WS model is ``mil`` (a single MIL head on bags): at the demo's 100 iterations per loop RTFM's scores swing
#: by 10-20 AUC points from loop to loop (``--ws rtfm`` runs it).
DEMO_PROFILE: dict[str, Any] = {"uvad": {"loops": 2, "ws_iters": 100, "ws_batch": 8, "occ_batch": 64, "dropout": 0.3,
                                         "occ_hidden": 64, "ws": "mil", "executor": "local"}}


def add_uvad_args(p: Any) -> None:
    from omnivad.cli_args import add_preset_arg

    p.add_argument("--config", help="YAML/JSON config file")
    add_preset_arg(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set uvad.loops=3 (repeatable)")
    p.add_argument("--occ", choices=["ae", "flow", "stg-nf"], help="wOCC model (uvad.occ)")
    from omnivad.uvad.ws import ws_names

    p.add_argument("--ws", choices=ws_names(), help="WS model (uvad.ws)")
    p.add_argument("--q", type=float, help="rough abnormal ratio Q (uvad.q)")
    p.add_argument("--corpus", help="corpus URI (path or s3://)")
    p.add_argument("--out", help="results/checkpoints URI (path or s3://)")
    p.add_argument("--domains", help="comma-separated domains (default: all)")
    p.add_argument("--workers", type=int, help="Ray Train workers per model training")
    p.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="one GPU per worker")
    p.add_argument("--local", action="store_true", help="run in this process without Ray (uvad.executor=local)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def uvad_main(args: Any) -> int:
    from omnivad import config

    flags = {"uvad.occ": args.occ, "uvad.ws": args.ws, "uvad.q": args.q, "corpus.uri": args.corpus,
             "storage.out": args.out, "scaling.workers": args.workers, "scaling.use_gpu": args.use_gpu,
             "corpus.domains": args.domains.split(",") if args.domains else None,
             "uvad.executor": "local" if args.local else None}
    overrides = config.flag_overrides(flags)
    from omnivad.cli_args import wants_demo

    demo = wants_demo(args)
    cfg = config.load(args.config, overrides + list(args.overrides), base=DEMO_PROFILE if demo else None,
                      preset=getattr(args, "preset", None))
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    if demo:
        import torch

        torch.set_num_threads(1)  # the demo's small models: extra threads only contend on a small shared machine
        log("[uvad] demo profile: synthetic demo corpus, in-process, MIL WS head, 2 loops/module, 100 WS iterations "
            "(give --config or --corpus for the paper's defaults on Ray)")
    result = run_uvad(cfg)
    print(result["table"])
    print(f"results: {storage.join(result['run'], 'results.json')}")
    return 0
