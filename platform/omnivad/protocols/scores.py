"""The test scores of a protocol run on disk, and its metrics recomputed from them.

Layout under a run directory ``RUN_DIR`` (the folder holding ``results.json``)::

    RUN_DIR/scores/<job>/<domain>/<video_id>.npy      float32 (T,) snippet scores
    RUN_DIR/scores/<job>/<domain>/<video_id>.ac.npy   float32 (T,) Abnormal-Conflict outputs (methods with AC)
    RUN_DIR/scores.csv                                 job,fold,key,domain,video_id,n_snippets,label,scores,ac
    RUN_DIR/jobs.json                                  each job's key, test domains and result fields

``<job>`` is the job's run name (its last stage's ``RunSpec.name``, e.g. ``null-mil+ac/fold0/E1``) encoded as
one folder name by :func:`job_folder`; paths in ``scores.csv`` are relative to ``RUN_DIR``; ``key`` is the job's
aggregation key joined by ``/``; ``ac`` is empty when the method has no such output.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from omnivad import storage
from omnivad.corpus.format import Corpus
from omnivad.errors import CorpusError

if TYPE_CHECKING:
    from omnivad.protocols.common import Job
    from omnivad.protocols.setup import selected_domains

CSV_FIELDS = ("job", "fold", "key", "domain", "video_id", "n_snippets", "label", "scores", "ac")
#: Job result fields kept in ``jobs.json`` (what aggregation reads besides the metrics).
JOB_FIELDS = ("checkpoint", "selected", "reused_runs", "threshold")


def job_folder(name: str) -> str:
    """One folder name for a job's run name: ``/`` and other unsafe characters percent-encoded
    (``null-mil+ac/fold0/E1`` → ``null-mil+ac%2Ffold0%2FE1``)."""
    return quote(name, safe="+@=,-._")


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _labels(corpus: Corpus, domain: str) -> dict[str, int]:
    rows = corpus.table(domain, "test", columns=["video_id", "label"]).to_pylist()
    return {str(r["video_id"]): int(r["label"]) for r in rows}


def _job_rows(fs: Any, root: str, job: Job, corpus: Corpus) -> list[dict[str, Any]]:
    name = job.stages[-1].name
    rows = []
    for domain, by_id in job.result.get("scores", {}).items():
        labels = _labels(corpus, domain)
        for vid, outputs in sorted(by_id.items()):
            rel = "/".join(["scores", job_folder(name), job_folder(domain), job_folder(vid)])
            storage.write_bytes_atomic(fs, storage.join(root, rel + ".npy"), _npy(outputs["scores"]))
            ac = ""
            if "ac" in outputs:
                ac = rel + ".ac.npy"
                storage.write_bytes_atomic(fs, storage.join(root, ac), _npy(outputs["ac"]))
            rows.append({"job": name, "fold": job.key[0], "key": "/".join(job.key), "domain": domain, "video_id": vid,
                         "n_snippets": int(np.asarray(outputs["scores"]).shape[0]), "label": labels.get(vid, ""),
                         "scores": rel + ".npy", "ac": ac})
    return rows


def write_scores(run_dir: str, jobs: list[Job], corpus: Corpus) -> None:
    """Write every job's test scores (``job.result["scores"]``), ``scores.csv`` and ``jobs.json`` under ``run_dir``."""
    fs, root = storage.filesystem(run_dir)
    rows: list[dict[str, Any]] = []
    records: dict[str, dict[str, Any]] = {}
    for job in jobs:
        name = job.stages[-1].name
        if name in records:
            continue
        rows.extend(_job_rows(fs, root, job, corpus))
        records[name] = {"key": list(job.key), "test_domains": list(job.test_domains),
                         **{k: job.result[k] for k in JOB_FIELDS if k in job.result}}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    storage.write_bytes_atomic(fs, storage.join(root, "scores.csv"), text.getvalue().encode())
    storage.write_json_atomic(fs, storage.join(root, "jobs.json"), {"jobs": records})


def read_scores(run_dir: str) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{job: {domain: {video_id: (T,) float32}}}`` from ``RUN_DIR/scores.csv``; a CorpusError naming the file
    that is missing or unreadable."""
    fs, root = storage.filesystem(run_dir)
    csv_path = storage.join(root, "scores.csv")
    if not fs.exists(csv_path):
        raise CorpusError(f"{storage.join(run_dir, 'scores.csv')}: no such file (a run directory written before "
                          "scores were saved cannot be re-evaluated)")
    reader = csv.DictReader(io.StringIO(storage.read_bytes(fs, csv_path).decode()))
    missing = [f for f in CSV_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise CorpusError(f"{csv_path}: missing columns {', '.join(missing)}")
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for row in reader:
        path = storage.join(root, row["scores"])
        try:
            arr = np.load(io.BytesIO(storage.read_bytes(fs, path)), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - every unreadable score file is reported the same way
            raise CorpusError(f"{path}: cannot read scores ({type(exc).__name__}: {exc})") from exc
        if arr.shape != (int(row["n_snippets"]),):
            raise CorpusError(f"{path}: scores shape {arr.shape}, scores.csv says n_snippets={row['n_snippets']}")
        out.setdefault(row["job"], {}).setdefault(row["domain"], {})[row["video_id"]] = arr
    return out


#: The results.json fields :func:`reevaluate` recomputes and compares.
COMPARED = ("per_domain", "mean_auc", "mean_auc_std", "n", "per_fold", "matrix", "per_category")


def _results_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(payload.get("starts") or [payload])


def reevaluate(run_dir: str) -> dict[str, Any]:
    """Recompute a protocol run's metrics from its saved scores: each job's frame metrics (the corpus, split
    alignment ``metrics.align`` and the protocol of the run's ``results.json``), aggregated the way the protocol
    did. Returns ``{"run_dir", "results": [...], "matches": bool, "differences": [...]}``."""
    from omnivad.config import Config
    from omnivad.engine.evaluate import metrics_of_scores
    from omnivad.protocols.base import get_protocol
    from omnivad.protocols.common import Job
    from omnivad.protocols.setup import selected_domains

    fs, root = storage.filesystem(run_dir)
    saved = storage.read_json(fs, storage.join(root, "results.json"))
    cfg = Config.model_validate(saved["config"])
    corpus = Corpus.open(saved["corpus"]["uri"], verify=False)
    scores = read_scores(run_dir)
    records = storage.read_json(fs, storage.join(root, "jobs.json"))["jobs"]
    jobs = []
    for name, rec in records.items():
        result = metrics_of_scores(corpus, scores.get(name, {}), rec["test_domains"], cfg.metrics.align)
        result.update({k: rec[k] for k in JOB_FIELDS if k in rec})
        jobs.append(Job(tuple(rec["key"]), [], list(rec["test_domains"]), result))
    protocol = get_protocol(cfg.protocol.name)
    reported = protocol.result_domains(cfg, selected_domains(cfg, corpus))
    results = [protocol.aggregate(cfg, jobs, reported, s, corpus) for s in protocol.starts(cfg)]
    diffs = [f"{'start ' + str(r.get('start')) + ': ' if r.get('start') else ''}{k}"
             for r, old in zip(results, _results_of(saved)) for k in COMPARED if k in old and r.get(k) != old[k]]
    recomputed = [{k: r[k] for k in COMPARED if k in r} | ({"start": r["start"]} if "start" in r else {}) for r in results]
    return {"run_dir": run_dir, "results": recomputed, "matches": not diffs, "differences": diffs}

