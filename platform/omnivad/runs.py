"""The runs under an output folder: one row per ``results.json`` (``omnivad runs ls|compare``).

:func:`load` walks a local ``--out`` folder for every ``results.json`` and returns one row per run: protocol,
method tag, config hash, date, steps, lr, selection, per-domain AUC/AP and the mean ± std. :func:`markdown`
and :func:`csv_text` render rows; :func:`compare` puts chosen runs (directories or config hashes) side by side.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from pathlib import Path
from typing import Any

from omnivad.errors import OmnivadError

#: The fixed columns of a row, in order; ``auc:<domain>`` / ``ap:<domain>`` columns follow.
COLUMNS = ("run", "protocol", "tag", "config_hash", "date", "steps", "lr", "selection", "mean_auc", "mean_auc_std", "n")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OmnivadError(f"{path}: cannot read results ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or "per_domain" not in data:
        raise OmnivadError(f"{path}: not a protocol results.json (no per_domain)")
    return data


def _date(path: Path) -> str:
    return _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def row_of(path: Path) -> dict[str, Any]:
    """The row of one ``results.json`` (``path`` the file or the run directory holding it)."""
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise OmnivadError(f"{path}: no results.json here")
    r = _read(path)
    train = (r.get("config") or {}).get("train", {})
    row: dict[str, Any] = {
        "run": str(path.parent), "protocol": r.get("protocol"), "tag": r.get("tag", r.get("method")),
        "config_hash": r.get("config_hash"), "date": _date(path), "steps": train.get("steps"), "lr": train.get("lr"),
        "selection": r.get("selection"), "mean_auc": r.get("mean_auc"), "mean_auc_std": r.get("mean_auc_std"),
        "n": r.get("n"),
    }
    for d, m in sorted(r["per_domain"].items()):
        row[f"auc:{d}"] = m.get("auc")
        row[f"ap:{d}"] = m.get("ap")
    return row


def find(out: str | Path) -> list[Path]:
    """Every protocol ``results.json`` under ``out`` (those of other jobs, without ``per_domain``, are skipped),
    sorted by path."""
    root = Path(out).expanduser()
    if not root.is_dir():
        raise OmnivadError(f"{root}: not a directory (give the --out folder of your runs)")
    return [p for p in sorted(root.rglob("results.json")) if _is_protocol(p)]


def _is_protocol(path: Path) -> bool:
    try:
        return "per_domain" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return False


def load(out: str | Path, as_frame: bool = False) -> Any:
    """One row (a dict) per ``results.json`` under ``out``; a pandas DataFrame with ``as_frame=True``
    (pandas must be installed)."""
    rows = [row_of(p) for p in find(out)]
    if not as_frame:
        return rows
    try:
        import pandas as pd
    except ImportError as exc:
        raise OmnivadError("runs.load(as_frame=True) needs pandas (pip install pandas)") from exc
    return pd.DataFrame(rows, columns=columns(rows))


def columns(rows: list[dict[str, Any]]) -> list[str]:
    extra = sorted({k for r in rows for k in r if k not in COLUMNS})
    return list(COLUMNS) + extra


def _fmt(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if key.startswith(("auc:", "ap:")) or key in ("mean_auc", "mean_auc_std"):
        return f"{100 * float(v):.2f}"
    return str(v)


def _mean_cell(r: dict[str, Any]) -> str:
    s = _fmt("mean_auc", r.get("mean_auc"))
    std = r.get("mean_auc_std")
    return s + (f" ± {_fmt('mean_auc_std', std)}" if std is not None and s else "")


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table (metrics in %), the mean as ``mean ± std``."""
    cols = [c for c in columns(rows) if c not in ("mean_auc", "mean_auc_std")] + ["mean AUC"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [_mean_cell(r) if c == "mean AUC" else _fmt(c, r.get(c)) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_text(rows: list[dict[str, Any]]) -> str:
    """CSV with every column (metrics as fractions, unformatted)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def resolve(ref: str, out: str | Path | None) -> Path:
    """A run given as a directory (or its results.json), or as a config hash (prefix) of a run under ``out``."""
    p = Path(ref).expanduser()
    if p.exists():
        return p
    if out is None:
        raise OmnivadError(f"{ref}: no such run directory (give --out to look it up as a config hash)")
    hits = [q for q in find(out) if str(_read(q).get("config_hash", "")).startswith(ref)]
    if not hits:
        raise OmnivadError(f"{ref}: neither a run directory nor a config hash of a run under {out}")
    return hits[-1]


def compare(refs: list[str], out: str | Path | None = None) -> str:
    """The chosen runs side by side: one column per run, one line per field (Markdown)."""
    rows = [row_of(resolve(ref, out)) for ref in refs]
    keys = [c for c in columns(rows) if c != "run"]
    head = "| field | " + " | ".join(Path(r["run"]).name for r in rows) + " |"
    lines = [head, "|" + "---|" * (len(rows) + 1)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(_fmt(k, r.get(k)) for r in rows) + " |")
    return "\n".join(lines)
