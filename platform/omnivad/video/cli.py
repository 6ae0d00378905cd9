"""Command line of ``jobs/extract.py``: flags → ``video`` config overrides → :func:`extract_corpus`."""

from __future__ import annotations

import argparse

from omnivad.cli_args import add_preset_arg


def add_extract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", required=True, help="a video file or a directory/prefix of videos (path or s3://)")
    p.add_argument("--out", required=True, help="corpus root to write or extend (path or s3://)")
    p.add_argument("--domain", help="domain name of these videos (or a 'domain' column in --labels)")
    p.add_argument("--split", choices=["train", "test", "validation"], help="their split (or a 'split' column in --labels)")
    p.add_argument("--labels", help="CSV with columns video,label[,category,split,domain] (default: abnormal iff annotated)")
    p.add_argument("--annotations", help="abnormal intervals: 'name [category] start end [start end ...]' per line")
    p.add_argument("--report", help="report JSON (default: <out>/reports/extract-<domain>-<split>.json)")
    p.add_argument("--config", help="YAML/JSON config file (section `video`)")
    add_preset_arg(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set video.resize=256 (repeatable)")
    p.add_argument("--backbone", help="i3d | r3d18")
    p.add_argument("--weights", help="local backbone weights file (state dict)")
    p.add_argument("--random-weights", action="store_true", default=None, help="random backbone weights (tests only)")
    p.add_argument("--crops", choices=["ten", "center"], help="ten-crop or centre crop (video.crops)")
    p.add_argument("--fps", type=float, help="resample to this frame rate first")
    p.add_argument("--on-error", choices=["fail", "skip"], help="corrupt videos fail the job (default) or are skipped")
    p.add_argument("--batch-size", type=int, help="snippets per backbone call")
    p.add_argument("--actors", type=int, help="backbone actors")
    p.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="one GPU per actor")
    p.add_argument("--no-gpu", dest="use_gpu", action="store_false", help="CPU actors even when the cluster has GPUs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--id-prefix", metavar="PREFIX",
                   help="prepend PREFIX to every video id of this extraction (splits whose files share names)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def extract_main(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.video.extract import extract_corpus

    flags = {
        "video.backbone": args.backbone, "video.weights": args.weights, "video.random_weights": args.random_weights,
        "video.crops": args.crops, "video.fps": args.fps, "video.on_error": args.on_error,
        "video.batch_size": args.batch_size, "video.actors": args.actors, "video.use_gpu": args.use_gpu,
    }
    overrides = config.flag_overrides(flags)
    cfg = config.load(args.config, overrides + list(args.overrides), preset=getattr(args, "preset", None))
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    rep = extract_corpus(cfg, args.videos, args.out, args.domain, args.split, labels=args.labels,
                         annotations=args.annotations, report=args.report, progress=not args.quiet,
                         id_prefix=args.id_prefix or "")
    print(f"extracted {rep.domain}/{rep.split}: {len(rep.extracted)} videos, {rep.snippets} snippets "
          f"({rep.feature_dim}-d, {rep.n_crops} crop(s)) → {args.out}; skipped {len(rep.skipped)}"
          + "".join(f"\n  skipped {s['video']}: {s['error']}" for s in rep.skipped))
    return 0
