"""The zero-shot cross-domain protocol (spec §1.1): train zxVAD on the source domain's normal videos
only (Ray Train), freeze G, score the never-seen target's test videos (PSNR, §7.1), frame-level AUC.

``<out>/zxvad-<hash>/``: ``ray/`` (Ray Train checkpoints; a rerun resumes from the latest),
``model.pt`` (G's final weights: no selection on the target, §6.2), ``history.json``,
``results.json`` and ``results.md``. The hash covers the zxvad config and the source/donor video lists,
so a rerun with the same inputs reuses the trained model.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import sys
import time
from typing import Any

import torch

from omnivad import storage
from omnivad.config import Config, ZxVADConfig
from omnivad.engine import checkpoint as ckpt
from omnivad.engine import harness
from omnivad.tracking import log_job
from omnivad.zxvad.data import iter_test_videos, list_set, to_tensor
from omnivad.zxvad.score import frame_auc, video_psnr
from omnivad.zxvad.train import build_generator


def log(msg: str) -> None:
    print(f"[zxvad] {msg}", file=sys.stderr, flush=True)


def run_name(zc: ZxVADConfig, source: list[str], donors: list[str]) -> str:
    blob = json.dumps({"zxvad": zc.model_dump(mode="json"), "source": source, "donors": donors}, sort_keys=True)
    return "zxvad-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def fit(cfg: Config, source: list[str], donors: list[str], out: str,
        step_hooks: list[harness.StepHook] | None = None) -> str:
    """Train (or resume) on Ray Train; write and return ``<out>/model.pt``. ``step_hooks``: per-step
    callables every worker calls (:func:`omnivad.engine.harness.launch`)."""
    from omnivad.zxvad.train import train_loop_per_worker

    model_uri = storage.join(out, "model.pt")
    fs, model_path = storage.filesystem(model_uri)
    if fs.exists(model_path):
        log(f"already trained: {model_uri}")
        return model_uri
    config = {"zxvad": cfg.zxvad.model_dump(mode="json"), "source": source, "donors": donors,
              "use_gpu": cfg.scaling.use_gpu}
    result = harness.launch(train_loop_per_worker, config, cfg, storage.join(out, "ray"), step_hooks=step_hooks)
    state = harness.final_state(result, out)
    ckpt.write_model(model_uri, {"generator": state["model"]["g"], "zxvad": state["zxvad"], "step": state["step"],
                                 "history": state["history"]})
    storage.write_json_atomic(fs, posixpath.join(posixpath.dirname(model_path), "history.json"), state["history"])
    return model_uri


def load_generator(model_uri: str, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, ZxVADConfig]:
    payload = ckpt.read_model(model_uri)
    zc = ZxVADConfig.model_validate(payload["zxvad"])
    g = build_generator(zc)
    g.load_state_dict(payload["generator"])
    return g.to(device).eval(), zc


def evaluate(g: torch.nn.Module, zc: ZxVADConfig, target: str) -> dict[str, Any]:
    """Score every target video one at a time; pooled frame-level AUC/AP of 1 - normalised PSNR."""
    drop = zc.clip_len if zc.drop_first is None else zc.drop_first
    psnrs, labels, names = [], [], []
    t0, frames = time.perf_counter(), 0
    for name, f, y in iter_test_videos(target, zc.frame_size, zc.gray, zc.max_frames):
        if f.shape[0] <= zc.clip_len:
            log(f"{name}: {f.shape[0]} frames, too short to score; skipped")
            continue
        p = video_psnr(g, to_tensor(f), zc.clip_len)
        if drop > zc.clip_len:
            p = p[drop - zc.clip_len :]
        psnrs.append(p)
        labels.append(y)
        names.append(name)
        frames += p.shape[0]
    if not psnrs:
        raise ValueError(f"{target}: no test video long enough to score")
    metrics = frame_auc(psnrs, labels, max(drop, zc.clip_len), zc.per_video_norm)
    return {**metrics, "videos": len(names), "frames": frames, "fps": frames / max(time.perf_counter() - t0, 1e-9),
            "per_video_psnr": {n: [round(float(v), 4) for v in p] for n, p in zip(names, psnrs)}}


def run_zero_shot(cfg: Config, source: str, target: str, out: str, donors: str | None = None,
                  step_hooks: list[harness.StepHook] | None = None) -> dict[str, Any]:
    from omnivad.protocols.runner import ensure_ray

    zc = cfg.zxvad
    source_videos = list_set(source)
    donor_uri = donors or zc.donor_uri
    donor_videos = list_set(donor_uri) if donor_uri else []
    run_dir = storage.join(out, run_name(zc, source_videos, donor_videos))
    log(f"source {source}: {len(source_videos)} videos; donors: {donor_uri or 'the source'}; run {run_dir}")
    ensure_ray(cfg)
    model_uri = fit(cfg, source_videos, donor_videos, run_dir, step_hooks)
    g, _ = load_generator(model_uri, "cuda" if cfg.scaling.use_gpu and torch.cuda.is_available() else "cpu")
    log(f"scoring target {target}")
    res = evaluate(g, zc, target)
    results = {
        "method": "zxvad", "source": source, "donors": donor_uri, "target": target, "model": model_uri,
        "auc": res["auc"], "ap": res["ap"], "videos": res["videos"], "frames": res["frames"], "fps": res["fps"],
        "per_video_psnr": res["per_video_psnr"], "config": zc.model_dump(mode="json"),
    }
    fs, path = storage.filesystem(storage.join(run_dir, "results.json"))
    storage.write_json_atomic(fs, path, results)
    table = ("| Method | Source | Target | AUC (%) | AP (%) | videos | frames |\n|---|---|---|---|---|---|---|\n"
             f"| zxVAD | {source} | {target} | {100 * res['auc']:.2f} | {100 * res['ap']:.2f} | {res['videos']} | {res['frames']} |\n"
             "Frame-level ROC-AUC over the pooled test frames (first clip_len frames of each video dropped), "
             "score 1 - per-video min-max normalised PSNR; final weights, no target data in training.\n")
    storage.write_bytes_atomic(fs, posixpath.join(posixpath.dirname(path), "results.md"), table.encode())
    results["table"], results["results_uri"] = table, storage.join(run_dir, "results.json")
    history = list(ckpt.read_model(model_uri).get("history", [])) if cfg.tracking.backend != "none" else []
    log_job(cfg, posixpath.basename(run_dir.rstrip("/")), run_dir, {"iterations": zc.iterations, "use_nc": zc.use_nc},
            history, {"auc": res["auc"], "ap": res["ap"]})
    return results
