"""The ``omnivad evaluate RUN_DIR``, ``predict``, ``export`` and ``convert`` subcommands (``cli.py`` adds them)."""

from __future__ import annotations

import argparse
import json
from typing import Any



def _dump(result: dict[str, Any], out: str | None) -> None:
    text = json.dumps(result, indent=2, default=float)
    if out:
        from omnivad import storage

        fs, path = storage.filesystem(out)
        storage.write_bytes_atomic(fs, path, (text + "\n").encode())
    else:
        print(text)


def evaluate_run_dir(args: argparse.Namespace) -> int:
    """``omnivad evaluate RUN_DIR [--out FILE]``: exit 0 when the recomputed metrics equal ``results.json``."""
    from omnivad.protocols.scores import reevaluate

    result = reevaluate(args.run_dir)
    _dump(result, args.out)
    status = "match results.json" if result["matches"] else f"DIFFER from results.json: {', '.join(result['differences'])}"
    print(f"{args.run_dir}: metrics recomputed from the saved scores {status}")
    return 0 if result["matches"] else 1


def add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="score new videos with a model.pt (snippet/frame .npy, CSV, intervals)")
    p.add_argument("--model", required=True, help="model.pt (a run's, omnivad convert's or omnivad.train's)")
    p.add_argument("--out", required=True, help="output directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--features", metavar="DIR", help="RTFM (T,C)/(T,K,C) or XD NAME__k.npy feature files")
    src.add_argument("--corpus", metavar="URI", help="score a corpus split (with --domain, --split)")
    src.add_argument("--video", metavar="FILE", help="a raw video, decoded and cropped as omnivad extract does, "
                     "through the backbone of --backbone-weights")
    p.add_argument("--layout", choices=["tkc", "ktc"], default="tkc", help="rank-3 feature files: (T,K,C) or (K,T,C)")
    p.add_argument("--domain", help="the domain's head (default and for unknown domains: the unseen rule)")
    p.add_argument("--split", default="test", help="corpus split to score (with --corpus)")
    p.add_argument("--backbone-weights", metavar="W", help="local backbone weights file for --video (a torch state dict)")
    p.add_argument("--backbone", default="i3d", help="backbone of --video: i3d (1024-d) or r3d18 (512-d) [i3d]")
    p.add_argument("--backbone-width", type=float, default=1.0, help="channel multiplier of the backbone [1.0]")
    p.add_argument("--crops", choices=["ten", "center"], default="ten", help="crops of --video snippets [ten]")
    p.add_argument("--resize", type=int, default=256, help="--video: shorter side after resizing, pixels [256]")
    p.add_argument("--crop-size", type=int, default=224, help="--video: square crop side, pixels [224]")
    p.add_argument("--threshold", help="'run' (the run's validation F1-optimal threshold) or a number: write intervals.csv")
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    from omnivad.api import load_model
    from omnivad.prediction import predict_videos, read_corpus_split, read_feature_dir, read_video, write_predictions

    if args.video and not args.backbone_weights:
        raise ValueError("predict --video needs --backbone-weights W (a local weights file of the backbone the "
                         "model's features were extracted with; nothing is downloaded)")
    loaded = load_model(args.model)
    if args.video:
        videos = read_video(args.video, args.backbone_weights, args.backbone, args.backbone_width, args.crops,
                            args.resize, args.crop_size)
    elif args.features:
        videos = read_feature_dir(args.features, args.layout)
    else:
        videos = read_corpus_split(args.corpus, args.domain, args.split)
    info = write_predictions(args.out, predict_videos(loaded, videos, args.domain), loaded, args.threshold, args.domain)
    thr = info["threshold"]
    extra = f"; threshold {thr['value']:.4g} ({thr['rule']}): {info['intervals']} interval(s)" if thr else ""
    print(f"{info['videos']} video(s) scored → {args.out}{extra}")
    return 0


def add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="one module with the network and its scoring rule: (K,T,C) -> (T,)")
    p.add_argument("model", metavar="MODEL", help="model.pt")
    p.add_argument("--format", required=True, choices=["torchscript", "onnx", "exported-program"], help="export format")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--domain", help="score with this domain's head (default: the unseen-domain rule)")
    p.add_argument("--snippets", type=int, default=8, help="T of the example input traced [8]")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from omnivad.export import export_model

    info = export_model(args.model, args.format, args.out, args.domain, args.snippets)
    print(f"{info['method']} ({info['scoring']}) → {args.out} [{args.format}]")
    return 0


def add_convert(sub: Any) -> None:
    p = sub.add_parser("convert", help="a public checkpoint into an omnivad model.pt")
    p.add_argument("ckpt", metavar="CKPT", help="the public checkpoint (a state dict; read with weights_only=True)")
    p.add_argument("--from", dest="source", required=True, choices=["bn-wvad"], help="the checkpoint's layout")
    p.add_argument("--out", required=True, help="model.pt to write")
    p.add_argument("--domains", help="comma-separated domain names of the model [default]")
    p.add_argument("--heads", type=int, default=4, help="attention heads of the public model [4]")
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from omnivad.export import convert_bn_wvad

    out = convert_bn_wvad(args.ckpt, args.out, args.domains.split(",") if args.domains else None, args.heads)
    print(f"{args.source} checkpoint {args.ckpt} → {out}")
    return 0
