"""``RUN_DIR/report/index.html``: the results table and every figure of ``omnivad plot`` on one page.

Self-contained: no scripts, no remote resources; images by relative path (``../figures/*.png``)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnivad.report.plots import RunInputs

STYLE = """body{font-family:sans-serif;margin:24px;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:6px;vertical-align:top}
figcaption{font-size:12px;color:#555}img{max-width:1100px;border:1px solid #ddd}p.note{font-size:13px;color:#444}"""

#: Section titles of the figures, by file-name prefix, in page order.
SECTIONS = (("table10", "Method comparison (Table 10)"), ("cross_domain", "Cross-domain matrix"),
            ("roc_", "ROC per domain"), ("pr_", "Precision-recall per domain"),
            ("training_", "Training curves"), ("uvad_", "wOCC-WS thresholds T_k per module"),
            ("timeline_", "Score timelines"))


def _cell(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def markdown_tables(md: str) -> str:
    """The Markdown of results.md as HTML: ``|`` tables become ``<table>``, headings and other lines paragraphs."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            rows.clear()

    for line in md.splitlines():
        text = line.strip()
        if text.startswith("|"):
            rows.append([c.strip() for c in text.strip("|").split("|")])
            continue
        flush()
        if text.startswith("#"):
            out.append(f"<h3>{html.escape(text.lstrip('#').strip())}</h3>")
        elif text:
            out.append(f'<p class="note">{html.escape(text)}</p>')
    flush()
    return "\n".join(out)


def _results_md(inp: RunInputs) -> str:
    for name in ("results.md", "table10.md"):
        path = inp.run_dir / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return ""


def figure_sections(report_dir: Path, figures: list[Path]) -> list[str]:
    parts = []
    known = tuple(prefix for prefix, _ in SECTIONS)
    others = ("", "Other figures")  # a figure no section names is still shown
    for prefix, title in (*SECTIONS, others):
        chosen = sorted(f for f in figures if (f.name.startswith(prefix) if prefix else not f.name.startswith(known)))
        if not chosen:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for f in chosen:
            rel = os.path.relpath(f, report_dir).replace(os.sep, "/")
            parts.append(f'<figure><img src="{html.escape(rel)}" alt="{html.escape(f.stem)}">'
                         f"<figcaption>{html.escape(f.name)}</figcaption></figure>")
    return parts


def write_report(inp: RunInputs, figures: list[Path]) -> Path:
    """Write ``RUN_DIR/report/index.html``; return its path."""
    report_dir = inp.run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    res = inp.results or inp.table10 or {}
    title = f"omnivad: {res.get('protocol', '')} {res.get('tag', '')} ({inp.run_dir.name})"
    body = ["<h2>Results</h2>",
            markdown_tables(_results_md(inp)) or "<p>(no results.md)</p>"]
    if res.get("config_hash"):
        body.append(f'<p class="note">config hash {html.escape(str(res["config_hash"]))}; '
                    f'selection {html.escape(str(res.get("selection")))}</p>')
    body += figure_sections(report_dir, figures)
    return write_page(report_dir, title, body)


def write_page(report_dir: Path, title: str, body: list[str]) -> Path:
    """``report_dir/index.html``: a self-contained page of ``title`` and the HTML fragments ``body``."""
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join([f"<h1>{html.escape(title)}</h1>", *body]) + "\n</body></html>\n")
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
