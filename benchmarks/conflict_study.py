"""When do domain heads help? MIL vs Null-MIL vs NullAng-MIL (± AC) and the reference baselines under abnormal
conflicts, swept over the synthetic corpus's knobs (issue 17).

Every cell is a synthetic corpus (``omnivad.corpus.synth``: scene offset, conflict frequency, share of events abnormal
everywhere, event added to or replacing the background, event length); every method trains E1 (all domains, one
fold) at the same budget (steps, lr, batch) through the shared in-process loop (``omnivad.engine.local``, the loop
Ray Train runs), and is scored on each domain's test split the community way (frame-level ROC-AUC). The weights
are the final ones (equal budget; no selection, so no test split is looked at before scoring), or with
``--selection best-val`` the best on the validation videos (never the test split).

    python benchmarks/conflict_study.py                      # the sweep in the README, 3 seeds
    python benchmarks/conflict_study.py --quick              # 2 cells x 2 seeds, minutes
    python benchmarks/conflict_study.py --cells zero-offset --methods mil,null-mil --seeds 0-4
    python benchmarks/conflict_study.py --cells zero-offset --methods mil,null-mil --seeds 10-12 \
        --set mdvad.head_dropout=0.3 --tag hdrop          # an ablation arm (benchmarks/README.md)

Methods ``*+hd`` are MDVAD's with ``mdvad.head_dropout=0.3`` (dropout before the heads, an option beyond the paper).
The README's ablations decided on development seeds (10-12) and report on seeds 0-4.

Writes ``OUT/runs.jsonl`` (one line per run, resumable: finished runs are skipped), ``OUT/table.md`` (mean ± std
per cell and method, and the multi-head gain over MIL) and ``OUT/gain.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# A study cell: SynthConfig knobs on top of BASE.
BASE: dict[str, Any] = {"domains": 4, "videos_per_domain": 64, "test_videos_per_domain": 32, "dim": 64, "crops": 2,
                        "min_snippets": 24, "max_snippets": 48}
CELLS: dict[str, dict[str, Any]] = {
    "default": {},
    "zero-offset": {"scene_shift": 0.0},
    "zero-offset-replace": {"scene_shift": 0.0, "event_mode": "replace"},
    "zero-offset-rare-conflict": {"scene_shift": 0.0, "conflict_strength": 0.25},
    "zero-offset-shared": {"scene_shift": 0.0, "n_general": 4, "n_conflict": 2},
    "zero-offset-short": {"scene_shift": 0.0, "event_span": (0.05, 0.15)},
    "big-offset": {"scene_shift": 3.0},
}
# A study method: a registered method plus config overrides.
METHODS: dict[str, tuple[str, list[str]]] = {
    "mil": ("mil", ["mdvad.ac=false"]),
    "null-mil": ("null-mil", ["mdvad.ac=false"]),
    "nullang-mil": ("nullang-mil", ["mdvad.ac=false"]),
    "nullang-mil+ac": ("nullang-mil", ["mdvad.ac=true"]),
    "mil+hd": ("mil", ["mdvad.ac=false", "mdvad.head_dropout=0.3"]),
    "null-mil+hd": ("null-mil", ["mdvad.ac=false", "mdvad.head_dropout=0.3"]),
    "nullang-mil+hd": ("nullang-mil", ["mdvad.ac=false", "mdvad.head_dropout=0.3"]),
    "mlp-mil": ("mlp-mil", []),
    "mlp-null-mil": ("mlp-null-mil", []),
}
SINGLE = {"mil": "mil", "null-mil": "mil", "nullang-mil": "mil", "nullang-mil+ac": "mil", "mlp-null-mil": "mlp-mil",
          "mil+hd": "mil+hd", "null-mil+hd": "mil+hd", "nullang-mil+hd": "mil+hd"}


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def corpus_for(cell: str, seed: int, root: Path) -> str:
    from omnivad.corpus.format import Corpus
    from omnivad.corpus.synth import SynthConfig, synthesize

    uri = str(root / f"{cell}-s{seed}")
    if not Corpus.exists(uri):
        synthesize(uri, SynthConfig(**{**BASE, **CELLS[cell], "seed": seed}))
    return uri


def run_one(uri: str, method: str, seed: int, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """Train E1 fold 0 at the study budget; frame-level AUC per domain on the test splits (``per_domain``).
    With ``--selection best-val`` the scored weights are the best on the validation videos (``train.eval_every``
    steps and the last, the trainer's rule: ``engine.train_loop.validate``); the final weights' AUCs are kept too
    (``final_per_domain``) and the step picked (``best_step``). Validation does not touch the training RNG or the
    weights, so the final weights are those of ``--selection final``."""
    import copy

    import torch

    from omnivad import config
    from omnivad.corpus.benchmark import build_benchmark
    from omnivad.corpus.format import Corpus
    from omnivad.engine.local import train_local
    from omnivad.engine.spec import RunSpec
    from omnivad.engine.train_loop import load_videos, model_domains, validate
    from omnivad.metrics import evaluate_corpus
    from omnivad.protocols import protocol_splits

    name, overrides = METHODS[method]
    corpus = Corpus.open(uri)
    cfg = config.load(overrides=[f"model.method={name}", f"train.lr={args.lr}", f"train.seed={seed}",
                                 f"data.batch_per_class={args.batch}", "benchmark.folds=1", *overrides, *extra])
    bench = build_benchmark(corpus, cfg.benchmark, corpus.domains)
    split = protocol_splits(bench, "E1", 0)
    spec = RunSpec(name="study", corpus_uri=uri, train=split.train, head_domains=list(corpus.domains),
                   steps=args.steps, seed=seed)
    held: dict[str, Any] = {}
    best: dict[str, Any] = {"val": -1.0, "step": 0, "model": None}
    on_step = on_model = None
    if args.selection == "best-val":
        val_videos = load_videos(corpus, split.val, bench.locations(split.val))

        def on_model(meth: Any, model: torch.nn.Module) -> None:
            held.update(method=meth, model=model, heads=model_domains(meth, model, spec))

        def on_step(step: int, _logs: Any, _batch: Any) -> None:
            if step % cfg.train.eval_every and step != spec.steps:
                return
            per = validate(held["method"], held["model"], val_videos, held["heads"], cfg.metrics.align)
            val = float(np.mean(list(per.values()))) if per else float("nan")
            if per and val > best["val"]:
                best.update(val=val, step=step, model=copy.deepcopy(held["model"].state_dict()))

    m, model = train_local(cfg, spec, on_step=on_step, on_model=on_model)

    def test_aucs() -> dict[str, float]:
        scores = {f"{d}/{v.video_id}": m.score(model, torch.from_numpy(v.features.transpose(1, 0, 2).copy()), d).numpy()
                  for d in corpus.domains for v in corpus.videos(d, "test")}
        res = evaluate_corpus(corpus, scores, corpus.domains)
        return {d: float(res["per_domain"][d]["auc"]) for d in corpus.domains}

    out: dict[str, Any] = {"per_domain": test_aucs()}
    if args.selection == "best-val":
        out["final_per_domain"] = out["per_domain"]
        if best["model"] is not None:  # the trainer's fallback: no validation AUC, the final weights
            model.load_state_dict(best["model"])
            model.eval()
            out["per_domain"] = test_aucs()
        out["best_step"], out["best_val_auc"] = best["step"], best["val"]
    return out


def mean_std(vals: list[float]) -> str:
    if not vals:
        return "–"
    a = 100 * np.asarray(vals)
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}" if len(a) > 1 else f"{a.mean():.1f}"


def table(rows: list[dict[str, Any]], cells: list[str], methods: list[str]) -> str:
    """Mean AUC ± sample std over seeds per cell and method, then each multi-head method's gain over its
    single-head baseline (paired by seed)."""
    def get(cell: str, method: str) -> dict[int, float]:
        return {r["seed"]: r["mean_auc"] for r in rows if r["cell"] == cell and r["method"] == method}

    out = ["| cell | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for c in cells:
        out.append(f"| {c} | " + " | ".join(mean_std(list(get(c, m).values())) for m in methods) + " |")
    multi = [m for m in methods if m in SINGLE and SINGLE[m] in methods and m != SINGLE[m]]
    if multi:
        out += ["", "Multi-head gain over the single head of the same network (points, paired by seed):", "",
                "| cell | " + " | ".join(f"{m} − {SINGLE[m]}" for m in multi) + " |", "|---|" + "---|" * len(multi)]
        for c in cells:
            gains = []
            for m in multi:
                a, b = get(c, m), get(c, SINGLE[m])
                gains.append(mean_std([a[s] - b[s] for s in sorted(set(a) & set(b))]))
            out.append(f"| {c} | " + " | ".join(gains) + " |")
    return "\n".join(out)


def figure(rows: list[dict[str, Any]], cells: list[str], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    multi = [m for m in methods if m in SINGLE and SINGLE[m] in methods and m != SINGLE[m]]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.6 * len(cells) + 2), 3.6))
    width = 0.8 / max(1, len(multi))
    for i, m in enumerate(multi):
        means, stds = [], []
        for c in cells:
            a = {r["seed"]: r["mean_auc"] for r in rows if r["cell"] == c and r["method"] == m}
            b = {r["seed"]: r["mean_auc"] for r in rows if r["cell"] == c and r["method"] == SINGLE[m]}
            g = 100 * np.asarray([a[s] - b[s] for s in sorted(set(a) & set(b))])
            means.append(g.mean() if len(g) else np.nan)
            stds.append(g.std(ddof=1) if len(g) > 1 else 0.0)
        ax.bar(np.arange(len(cells)) + i * width, means, width, yerr=stds, label=f"{m} − {SINGLE[m]}", capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(cells)) + width * (len(multi) - 1) / 2, cells, rotation=20, ha="right")
    ax.set_ylabel("mean AUC gain (points)")
    ax.set_title("Multi-head gain over the single head (mean ± std over seeds)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells: " + ", ".join(CELLS))
    p.add_argument("--methods", default="mil,null-mil,nullang-mil,mlp-mil,mlp-null-mil",
                   help="comma-separated: " + ", ".join(METHODS))
    p.add_argument("--seeds", default="0-2", help="seeds (corpus and training), e.g. 0-2 or 0,3")
    p.add_argument("--steps", type=int, default=300, help="training steps of every run (equal budget)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of every run")
    p.add_argument("--batch", type=int, default=32, help="data.batch_per_class of every run")
    p.add_argument("--set", action="append", default=[], help="extra config override for every run (ablations)")
    p.add_argument("--selection", default="final", choices=["final", "best-val"],
                   help="weights scored: the final ones, or the best on validation (train.eval_every; an ablation)")
    p.add_argument("--tag", default="", help="label of this ablation in runs.jsonl (with --set)")
    p.add_argument("--quick", action="store_true", help="cells default,zero-offset; seeds 0-1; 150 steps")
    p.add_argument("--out", default="benchmarks/results/conflict_study", help="output folder")
    args = p.parse_args(argv)
    if args.quick:
        args.cells, args.seeds, args.steps = "default,zero-offset", "0-1", 150
    cells, methods, seeds = args.cells.split(","), args.methods.split(","), parse_seeds(args.seeds)
    for c in cells:
        if c not in CELLS:
            p.error(f"--cells: unknown cell {c!r} (known: {', '.join(CELLS)})")
    for m in methods:
        if m not in METHODS:
            p.error(f"--methods: unknown method {m!r} (known: {', '.join(METHODS)})")
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    budget = {"steps": args.steps, "lr": args.lr, "batch": args.batch, "set": args.set, "tag": args.tag}
    if args.selection != "final":  # (absent for the final weights, so older rows still match)
        budget["selection"] = args.selection
    done = {(r["cell"], r["method"], r["seed"]) for r in rows if r["budget"] == budget}
    root = Path(os.environ.get("OMNIVAD_STUDY_CORPORA", Path(tempfile.gettempdir()) / "omnivad-conflict-study"))
    todo = [(c, s, m) for c in cells for s in seeds for m in methods if (c, m, s) not in done]
    for i, (c, s, m) in enumerate(todo, 1):
        t0 = time.time()
        res = run_one(corpus_for(c, s, root), m, s, args, args.set)
        per = res.pop("per_domain")
        row = {"cell": c, "method": m, "seed": s, "budget": budget, "per_domain": per,
               "mean_auc": float(np.mean(list(per.values()))), **res, "seconds": round(time.time() - t0, 1)}
        if "final_per_domain" in res:
            row["final_mean_auc"] = float(np.mean(list(res["final_per_domain"].values())))
        rows.append(row)
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[{i}/{len(todo)}] {c} seed {s} {m}: mean AUC {100 * row['mean_auc']:.1f} "
              f"({row['seconds']} s)", flush=True)
    sel = [r for r in rows if r["budget"] == budget]
    md = table(sel, cells, methods)
    (out / ("table" + (f"-{args.tag}" if args.tag else "") + ".md")).write_text(md + "\n")
    figure(sel, cells, methods, out / ("gain" + (f"-{args.tag}" if args.tag else "") + ".png"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
