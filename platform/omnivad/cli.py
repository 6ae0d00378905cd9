"""``omnivad`` command line: one CLI for every job.

``omnivad run|tune|uvad|zxvad|extract|retrain|corpus|benchmark|evaluate|plot|runs|config show``; one
``_add_<name>`` function per subcommand. ``jobs/*.py`` are few-line shims over the same functions (for
``ray job submit``). Every option has help and shows its default (``omnivad <cmd> --help``).
Errors of the platform (bad input, bad config) print one line naming the file/field and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from omnivad.cli_args import add_log_args, add_preset_arg, add_run_args, apply_log_args, config_from_args  # noqa: F401 (re-exported)
from omnivad.errors import OmnivadError
from omnivad.signals import Interrupted, _interrupted_code, install_signal_handlers  # noqa: F401  (re-exported)


def run_main(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.protocols.runner import run_comparison, run_protocol

    cfg = config_from_args(args)
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    from omnivad.cli_reproduce import paper_run_main

    if (code := paper_run_main(args, cfg)) is not None:
        return code
    if getattr(args, "methods", None):
        if args.method:
            raise OmnivadError("give --method or --methods, not both")
        comparison = run_comparison(cfg, [m for m in args.methods.split(",") if m.strip()])
        print(comparison["table"])
        print(f"comparison: {comparison['results_uri']}")
        return 0
    if getattr(args, "demo_profile", False):
        from omnivad.logs import logger

        logger().info(f"[omnivad] demo profile: synthetic demo corpus, {cfg.train.steps} steps at lr {cfg.train.lr:g} "
                      "(give --config or --corpus for the paper's defaults)")
    result = run_protocol(cfg)
    print(result["table"])
    print(f"results: {result['results_uri']}")
    return 0


# --------------------------------------------------------------------------------------------------
# Subcommands


def _corpus_import(args: argparse.Namespace) -> int:
    from omnivad.corpus.importers import import_corpus

    roots = []
    for r in args.root or []:
        if "=" not in r:
            raise OmnivadError(f"--root {r!r}: expected OLD=NEW")
        old, new = r.split("=", 1)
        roots.append((old, new))
    manifest = import_corpus(
        args.format, args.list, args.out, domain=args.domain, split=args.split, gt=args.gt, labels=args.labels,
        abnormal_pattern=args.abnormal_pattern, abnormal_first=args.abnormal_first, roots=roots,
        average_crops=args.average_crops, backbone=args.backbone, progress=not args.quiet,
        id_prefix=args.id_prefix or "", part_bytes=max(1, int(args.part_mb * (1 << 20))),
    )
    st = manifest.domains[args.domain].splits[args.split]
    print(f"imported {args.domain}/{args.split}: {st.videos} videos ({st.normal} normal, {st.abnormal} abnormal), "
          f"{st.snippets} snippets → {args.out}")
    return 0


def _corpus_add_side(args: argparse.Namespace) -> int:
    from omnivad.corpus.importers import add_side_signals

    signals = {k: v for k, v in (("flow", args.flow), ("objects", args.objects)) if v}
    if not signals:
        raise OmnivadError("corpus add-side: give --flow DIR and/or --objects DIR")
    manifest = add_side_signals(args.corpus, args.domain, signals, splits=args.split or None, progress=not args.quiet)
    for s, st in manifest.domains[args.domain].splits.items():
        print(f"{args.domain}/{s}: {st.videos} videos, side signals {st.side or 'none'}")
    return 0


def describe(uri: str) -> str:
    from omnivad.corpus.format import Corpus

    c = Corpus.open(uri)
    m = c.manifest
    lines = [f"corpus {uri}", f"  feature_dim {m.feature_dim}, backbone {m.backbone}, "
             f"{m.frames_per_snippet} frames/snippet, fingerprint {c.fingerprint()}"]
    lines.append(f"  {'domain':<12} {'split':<10} {'videos':>7} {'normal':>7} {'abnormal':>8} {'snippets':>9} {'crops':>5}  categories")
    for d, e in m.domains.items():
        for s, st in e.splits.items():
            cats = ", ".join(f"{k}:{v}" for k, v in sorted(st.categories.items()) if k not in ("Normal", ""))
            lines.append(f"  {d:<12} {s:<10} {st.videos:>7} {st.normal:>7} {st.abnormal:>8} {st.snippets:>9} "
                         f"{e.n_crops or '-':>5}  {cats}")
    return "\n".join(lines)


def _corpus_verify(args: argparse.Namespace) -> int:
    from omnivad.corpus.format import Corpus

    corpus = Corpus.open(args.uri, verify=True)
    bad: list[str] = []
    parts = corpus.parts()
    for part in parts:
        try:
            corpus.read_part_bytes(part, verify=True)
        except OmnivadError as exc:
            bad.append(str(exc))
    for line in bad:
        print(f"omnivad: error: {line}", file=sys.stderr)
    if bad:
        print(f"omnivad: error: {args.uri}: {len(bad)} of {len(parts)} part(s) failed verification", file=sys.stderr)
        return 1
    print(f"{args.uri}: {len(parts)} part(s) verified (sha256 matches the manifest)")
    return 0


def _corpus_info(args: argparse.Namespace) -> int:
    print(describe(args.uri))
    return 0


def _corpus_synth(args: argparse.Namespace) -> int:
    from omnivad.corpus.synth import SynthConfig, synthesize

    fields = {"domains": args.domains, "videos_per_domain": args.videos, "dim": args.dim,
              "conflict_strength": args.conflict, "noise": args.noise, "seed": args.seed}
    cfg = SynthConfig(**{k: v for k, v in fields.items() if v is not None})
    synthesize(args.out, cfg)
    print(describe(args.out))
    return 0


def _benchmark_build(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.corpus.format import Corpus

    cfg = config.load(args.config, args.overrides, preset=args.preset)
    corpus = Corpus.open(args.corpus)
    bench = build_benchmark(corpus, cfg.benchmark, cfg.corpus.domains)
    bench.save(args.out)
    print(f"benchmark with {len(bench.folds)} fold(s) → {args.out}")
    for f in bench.folds:
        parts = [f"{d}: {len(ids)} train/{len(f.val.get(d, []))} val/{len(f.test.get(d, []))} test" for d, ids in f.train.items()]
        print(f"  fold {f.index}: " + "; ".join(parts))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from omnivad import storage
    from omnivad.metrics import evaluate_dirs

    if args.run_dir:
        from omnivad.cli_tools import evaluate_run_dir

        return evaluate_run_dir(args)
    if not args.corpus or not args.scores:
        raise ValueError("omnivad evaluate: give a protocol RUN_DIR, or --corpus URI and --scores DIR")
    result = evaluate_dirs(args.corpus, args.scores, args.domains.split(",") if args.domains else None, align=args.align)
    text = json.dumps(result, indent=2, default=float)
    if args.out:
        fs, path = storage.filesystem(args.out)
        storage.write_bytes_atomic(fs, path, (text + "\n").encode())
    for d, m in result["per_domain"].items():
        print(f"{d:<14} AUC {100 * m['auc']:6.2f}   AP {100 * m['ap']:6.2f}")
    print(f"{'mean':<14} AUC {100 * result['mean_auc']:6.2f}")
    return 0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default; descriptions keep their line breaks."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help shows defaults; its sub-parsers are ``Parser`` too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("omnivad")
    except metadata.PackageNotFoundError:
        import omnivad

        return str(getattr(omnivad, "__version__", "unknown"))


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="omnivad", description="multi-domain video anomaly detection on Ray")
    p.add_argument("--version", action="version", version=f"omnivad {version()}")
    add_log_args(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    for job in JOBS:
        _add_job(sub, *job)
    _add_corpus(sub)
    _add_benchmark(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_export(sub)
    _add_convert(sub)
    _add_plot(sub)
    _add_runs(sub)
    _add_config(sub)
    from omnivad.cli_analyze import add_analyze
    from omnivad.cli_reproduce import add_reproduce

    add_analyze(sub)
    add_reproduce(sub)
    return p


Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


def _add_run(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="train and evaluate a protocol (jobs/mdvad.py)", description="train and evaluate a protocol (single, E1-E4) or compare methods (--methods, Table 10)")
    add_run_args(run)
    from omnivad.cli_reproduce import add_paper_run_args

    add_paper_run_args(run)
    run.set_defaults(func=run_main)


#: The job subcommands: (name, help, module, its add-arguments function, its main function); each module is imported
#: only when the parser is built, and shares the log flags.
JOBS = (
    ("tune", "hyperparameter search: Ray Tune + Optuna over the shared trainer (jobs/tune.py)", "omnivad.tune.cli",
     "add_tune_args", "tune_main"),
    ("uvad", "unsupervised VAD: wOCC-WS interleaving, no labels (jobs/uvad.py)", "omnivad.uvad.runner",
     "add_uvad_args", "uvad_main"),
    ("zxvad", "zero-shot cross-domain VAD on raw frames (jobs/zxvad.py)", "omnivad.zxvad.cli", "add_zxvad_args",
     "zxvad_main"),
    ("extract", "video files -> snippet features in a corpus (jobs/extract.py)", "omnivad.video.cli",
     "add_extract_args", "extract_main"),
    ("retrain", "scheduled retraining with a gated model registry (jobs/retrain.py)", "omnivad.registry",
     "add_retrain_args", "retrain_main"),
)


def _add_job(sub: Subparsers, name: str, help_text: str, module: str, add_args: str, main: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    p = sub.add_parser(name, help=help_text)
    getattr(mod, add_args)(p)
    add_log_args(p)
    p.set_defaults(func=getattr(mod, main))


def _add_corpus(sub: Subparsers) -> None:
    corpus = sub.add_parser("corpus", help="import, inspect and synthesise corpora").add_subparsers(
        dest="corpus_cmd", required=True, metavar="CMD")
    _add_corpus_import(corpus)
    _add_corpus_add_side(corpus)
    _add_corpus_info_verify(corpus)
    _add_corpus_synth(corpus)


def _add_plot(sub: Subparsers) -> None:
    from omnivad.report.plots import plot_main

    p = sub.add_parser("plot", help="figures (ROC/PR, timelines, heat-map, curves, Table 10) and an HTML report of a run",
                       description="writes RUN_DIR/figures/*.png and RUN_DIR/report/index.html")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a protocol run's folder (results.json) or a comparison's (table10.json)")
    p.add_argument("--corpus", help="corpus for the ground truth (default: the one results.json names)")
    p.add_argument("--max-videos", type=int, default=12, help="score timelines for at most this many test videos")
    p.add_argument("--no-report", dest="report", action="store_false", help="figures only, no report/index.html")
    p.set_defaults(func=plot_main)


def _add_runs(sub: Subparsers) -> None:
    runs = sub.add_parser("runs", help="list and compare finished runs").add_subparsers(dest="runs_cmd", required=True, metavar="CMD")
    ls = runs.add_parser("ls", help="one row per results.json under OUT")
    ls.add_argument("out", metavar="OUT", help="the --out folder of the runs")
    ls.add_argument("--format", choices=["md", "csv"], default="md", help="Markdown table or CSV")
    ls.set_defaults(func=_runs_ls)
    cmp_ = runs.add_parser("compare", help="runs side by side (one column per run)")
    cmp_.add_argument("runs", metavar="RUN", nargs="+", help="a run directory, or a config hash (prefix) of a run under --out")
    cmp_.add_argument("--out", help="where to look config hashes up")
    cmp_.set_defaults(func=_runs_compare)


def _runs_ls(args: argparse.Namespace) -> int:
    from omnivad import runs

    rows = runs.load(args.out)
    print(runs.csv_text(rows) if args.format == "csv" else runs.markdown(rows), end="\n" if args.format == "md" else "")
    return 0


def _runs_compare(args: argparse.Namespace) -> int:
    from omnivad import runs

    print(runs.compare(args.runs, args.out))
    return 0


def _add_config(sub: Subparsers) -> None:
    cfg = sub.add_parser("config", help="the configuration schema").add_subparsers(dest="config_cmd", required=True, metavar="CMD")
    show = cfg.add_parser("show", help="every field with its description and default")
    show.add_argument("section", nargs="?", help="one section (default: every section)")
    show.set_defaults(func=_config_show)
    presets = cfg.add_parser("presets", help="the shipped presets (--preset NAME); with NAME, its YAML")
    presets.add_argument("name", nargs="?", metavar="NAME", help="print this preset's YAML (values and spec sources)")
    presets.set_defaults(func=_config_presets)


def _config_show(args: argparse.Namespace) -> int:
    from omnivad.schema import describe_schema

    print(describe_schema(args.section))
    return 0


def _config_presets(args: argparse.Namespace) -> int:
    from omnivad.presets import list_presets, preset_summary, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return 0
    for name in list_presets():
        print(f"{name:<14} {preset_summary(name)}")
    return 0


def _add_corpus_import(corpus: Subparsers) -> None:
    imp = corpus.add_parser("import", help="import pre-extracted snippet features")
    imp.add_argument("--format", choices=["rtfm", "xd"], required=True, help="list layout: RTFM (ShanghaiTech/UCF) or XD-Violence")
    imp.add_argument("--list", required=True, help="list file of per-video .npy paths")
    imp.add_argument("--gt", help="concatenated frame-level ground truth .npy (test split)")
    imp.add_argument("--domain", required=True, help="domain name of the imported videos")
    imp.add_argument("--split", required=True, choices=["train", "test", "validation"], help="split of the imported videos")
    imp.add_argument("--out", required=True, help="corpus URI (path or s3://); added to when it exists")
    imp.add_argument("--root", action="append", metavar="OLD=NEW", help="rewrite a path prefix of the list")
    lab = imp.add_mutually_exclusive_group()
    lab.add_argument("--labels", help="CSV video_id,label[,category]")
    lab.add_argument("--abnormal-pattern", help="regex: a matching name is abnormal")
    lab.add_argument("--abnormal-first", type=int, help="the first N lines are abnormal (RTFM)")
    imp.add_argument("--average-crops", action="store_true", help="store the crop mean instead of every crop")
    imp.add_argument("--backbone", default="i3d", help="feature backbone recorded in the manifest")
    imp.add_argument("--part-mb", type=float, default=128.0, help="target size of the part files in MiB")
    imp.add_argument("--id-prefix", metavar="PREFIX",
                     help="prepend PREFIX to every video id of this import (splits whose files share names)")
    imp.add_argument("--quiet", action="store_true", help="no progress output")
    imp.set_defaults(func=_corpus_import)


def _add_corpus_add_side(corpus: Subparsers) -> None:
    side = corpus.add_parser("add-side", help="attach per-snippet side signals (flow magnitude, object scores)")
    side.add_argument("--corpus", required=True, help="corpus URI (path or s3://)")
    side.add_argument("--domain", required=True, help="domain to update")
    side.add_argument("--split", action="append", help="split to update (repeatable; default: every split)")
    side.add_argument("--flow", metavar="DIR", help="<video_id>.npy per video: (T,) motion intensity")
    side.add_argument("--objects", metavar="DIR", help="<video_id>.npy per video: (T, W) object-class scores")
    side.add_argument("--quiet", action="store_true", help="no progress output")
    side.set_defaults(func=_corpus_add_side)


def _add_corpus_info_verify(corpus: Subparsers) -> None:
    info = corpus.add_parser("info", help="videos, labels, categories and snippets per domain and split")
    info.add_argument("uri", help="corpus URI (path or s3://)")
    info.set_defaults(func=_corpus_info)
    ver = corpus.add_parser("verify", help="check every part of a corpus against the sha256 in its manifest")
    ver.add_argument("uri", help="corpus URI (path or s3://)")
    ver.set_defaults(func=_corpus_verify)


def _add_corpus_synth(corpus: Subparsers) -> None:
    syn = corpus.add_parser("synth", help="make a synthetic multi-domain corpus with planted conflicts")
    syn.add_argument("--out", required=True, help="corpus URI to write")
    syn.add_argument("--domains", type=int, help="number of domains (SynthConfig default when not given)")
    syn.add_argument("--videos", type=int, help="training videos per domain")
    syn.add_argument("--dim", type=int, help="feature dimension")
    syn.add_argument("--conflict", type=float, help="conflict strength in [0, 1]")
    syn.add_argument("--noise", type=float, help="feature noise level")
    syn.add_argument("--seed", type=int, help="random seed")
    syn.set_defaults(func=_corpus_synth)


def _add_benchmark(sub: Subparsers) -> None:
    bench = sub.add_parser("benchmark", help="MDVAD benchmark splits").add_subparsers(dest="bench_cmd", required=True, metavar="CMD")
    bb = bench.add_parser("build", help="preview the benchmark splits a run would use (folds, validation, low-shot, "
                          "leave-one-out)", description="A preview: runs build the same splits themselves from the "
                          "same corpus and benchmark.* config (they do not read this file); the run's copy is "
                          "<out>/runs/<config hash>/benchmark.json.")
    bb.add_argument("--corpus", required=True, help="corpus URI (path or s3://)")
    bb.add_argument("--out", required=True, help="benchmark JSON path or URI")
    bb.add_argument("--config", help="YAML/JSON config file (its benchmark section)")
    add_preset_arg(bb)
    bb.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set benchmark.folds=3 (repeatable)")
    bb.set_defaults(func=_benchmark_build)


def _add_evaluate(sub: Subparsers) -> None:
    ev = sub.add_parser("evaluate", help="frame-level AUC/AP of score files, community protocol")
    ev.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                    help="a protocol run directory: recompute its results.json metrics from its saved scores")
    ev.add_argument("--corpus", help="corpus URI with the test gt (with --scores)")
    ev.add_argument("--scores", action="append", help="dir of <video_id>.npy; repeat once per fold (with --corpus)")
    ev.add_argument("--domains", help="comma-separated (default: every domain with a test split)")
    ev.add_argument("--align", choices=["scores", "gt"], default="scores",
                    help="scores: fit scores to every gt frame (MDVAD, BN-WVAD); gt: fit the gt to 16*T (RTFM)")
    ev.add_argument("--out", help="write the JSON here")
    ev.set_defaults(func=_evaluate)


def _add_predict(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from omnivad.cli_tools import add_predict

    add_predict(sub)


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from omnivad.cli_tools import add_export

    add_export(sub)


def _add_convert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from omnivad.cli_tools import add_convert

    add_convert(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_log_args(args)
    install_signal_handlers()
    try:
        return int(args.func(args))
    except OmnivadError as exc:
        print(f"omnivad: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"omnivad: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        name = exc.signame if isinstance(exc, Interrupted) else "SIGINT"
        print(f"omnivad: interrupted ({name}); the write in progress was rolled back", file=sys.stderr)
        return _interrupted_code(exc)


def job_main(prog: str, doc: str, add_args: Any, run: Any) -> int:
    """What every ``jobs/*.py`` does: parse its flags, make one call into omnivad, print platform
    errors as one line naming the file/field (no traceback) and return the exit code."""
    parser = Parser(prog=prog, description=doc.strip().splitlines()[0])
    add_args(parser)
    add_log_args(parser)
    args = parser.parse_args()
    apply_log_args(args)
    install_signal_handlers()
    name = prog.rsplit("/", 1)[-1].removesuffix(".py")
    try:
        return int(run(args))
    except (OmnivadError, FileNotFoundError, ValueError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        sig = exc.signame if isinstance(exc, Interrupted) else "SIGINT"
        print(f"{name}: interrupted ({sig}); the write in progress was rolled back", file=sys.stderr)
        return _interrupted_code(exc)


def entry() -> None:
    """Console-script entry (``python -m omnivad``): run :func:`main`, then :func:`shutdown_and_exit`."""
    shutdown_and_exit(main())


def shutdown_and_exit(code: int) -> NoReturn:
    """Exit with ``code`` through the normal interpreter exit, Ray shut down first.

    pyarrow's reader threads can abort a process during interpreter teardown ("terminate called without
    an active exception", apache/arrow#34314: a native thread that still needs the GIL once finalization
    has begun). So Ray (its workers and Ray Data's executor, with their pyarrow reads) is shut down and
    the output flushed while the interpreter is still whole; then ``sys.exit`` runs the atexit handlers
    and the teardown as usual.
    """
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
