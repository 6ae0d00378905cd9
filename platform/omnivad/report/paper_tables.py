"""MDVAD's Tables 5–10 and A5 exactly as the paper lays them out (spec mdvad.md §9), as Markdown and CSV.

Each builder takes finished ``results.json`` payloads (one per Head × AC variant, see
:data:`omnivad.paper.variants.PAPER_VARIANTS`) and, where the paper's table has it, the single-domain reference
(a ``single`` protocol payload: its cross-domain matrix). Cells are the domain's headline metric in % as
``mean ± sample std`` over folds (no ± with one fold, as :mod:`omnivad.report.tables`); the reference cells are
fold means (the matrix keeps no std). The AC column reads as in the paper: ✓ on, – off.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from omnivad.report.tables import (
    METHOD_NAMES, _cell, _metric_note, _n, _selection_note, _stats_note, domain_cell, headline,
)

#: The paper's column order; domains of other names follow in the run's order.
PAPER_DOMAINS = ("UCFC", "XD", "LAD", "UBIF", "TAD", "ST")
AC_ON, AC_OFF = "✓", "–"


@dataclass
class PaperTable:
    """One table: ``name`` (file stem, e.g. ``table5``), title, header, rows of cell text and footnotes."""

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines + [""] + self.notes) + "\n"

    def csv(self) -> str:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return text.getvalue()


def order_domains(domains: list[str]) -> list[str]:
    """The paper's domains in its order (UCFC, XD, LAD, UBIF, TAD, ST), then any other in the given order."""
    return [d for d in PAPER_DOMAINS if d in domains] + [d for d in domains if d not in PAPER_DOMAINS]


def head_name(r: dict[str, Any]) -> str:
    name = METHOD_NAMES.get(r["method"], r["method"])
    trunk = r.get("trunk")
    return name + (f" @ {METHOD_NAMES.get(trunk, trunk)}" if trunk and trunk != "mdvad" else "")


def ac_mark(r: dict[str, Any]) -> str:
    return AC_ON if r.get("ac") else AC_OFF


def model_name(r: dict[str, Any]) -> str:
    """``NullAng-MIL + AC`` (Tables 9, A5, 10)."""
    return head_name(r) + (" + AC" if r.get("ac") else "")


def _cells(r: dict[str, Any], domains: list[str]) -> list[str]:
    n = _n(r)
    return [domain_cell(r["per_domain"][d], n) if d in r["per_domain"] else "–" for d in domains]


def _avg(r: dict[str, Any], key: str = "mean_auc") -> str:
    return _cell(r.get(key), r.get(f"{key}_std"), _n(r))


def _notes(results: list[dict[str, Any]], entries: dict[str, dict[str, Any]], extra: str = "",
           avg: bool = True) -> list[str]:
    ns = sorted({_n(r) for r in results}) or [1]
    sels = list(dict.fromkeys(r.get("selection") for r in results)) or [None]
    return [f"{_metric_note(entries)}; " + (f"Avg. = mean AUC over the columns{extra}; " if avg else "")
            + "; ".join(_stats_note(n) for n in ns) + "; " + "; ".join(_selection_note(s) for s in sels) + ".",
            f"AC: {AC_ON} on, {AC_OFF} off."]


def _domains_of(results: list[dict[str, Any]], exclude: tuple[str, ...] = ()) -> tuple[list[str], dict[str, Any]]:
    entries: dict[str, Any] = {}
    for r in results:
        for d, e in r["per_domain"].items():
            if d not in exclude:
                entries.setdefault(d, e)
    return order_domains(list(entries)), entries


def _reference_row(single: dict[str, Any], domains: list[str], in_domain: bool) -> list[str]:
    def pair(out: float | None, diag: float | None) -> str:
        return f"{_cell(out)} ({_cell(diag)})" if in_domain else _cell(out)

    m = single["matrix"]
    label = "Single-domain Out Avg." + (" (in-domain)" if in_domain else "")
    cells = [pair(single["out_avg"].get(d), m.get(d, {}).get(d)) for d in domains]
    return [label, "", *cells, pair(single.get("out_avg_mean"), single.get("in_domain_mean"))]


def held_table(name: str, title: str, variants: list[dict[str, Any]], single: dict[str, Any] | None = None,
               in_domain: bool = False) -> PaperTable:
    """Tables 5–7: ``Head | AC | <domains> | Avg.``; the single-domain reference row first when given."""
    domains, entries = _domains_of(variants)
    rows = [_reference_row(single, domains, in_domain)] if single is not None else []
    rows += [[head_name(r), ac_mark(r), *_cells(r, domains), _avg(r)] for r in variants]
    notes = _notes(variants, entries)
    if single is not None:
        notes.append("Single-domain: single-head MIL per source (Table 4); Out Avg. = mean over the other sources' "
                     "models on the column's target" + ("; (in-domain) = the target's own model" if in_domain else "")
                     + "; fold means.")
    return PaperTable(name, title, ["Head", "AC", *domains, "Avg."], rows, notes)


def table5(variants: list[dict[str, Any]], single: dict[str, Any] | None = None) -> PaperTable:
    return held_table("table5", "Table 5 — E1 Held-in: trained on all domains, tested on each", variants, single, True)


def table6(variants: list[dict[str, Any]], single: dict[str, Any] | None = None) -> PaperTable:
    return held_table("table6", "Table 6 — E2 Leave-one-out: trained on the other domains, tested on the target",
                      variants, single)


def table7(variants: list[dict[str, Any]]) -> PaperTable:
    return held_table("table7", "Table 7 — E3 Low-shot adaptation: the E2 model fine-tuned on ~10% of the target",
                      variants)


def table8(variants: list[dict[str, Any]], single: dict[str, Any] | None = None) -> PaperTable:
    """``Model | <domains> | Avg.``: Single (in-domain, Table 4's diagonal), then per variant the E1 and the E2
    model fine-tuned (one row per start; the variant is named when there is more than one)."""
    starts = [s for r in variants for s in (r.get("starts") or [r])]
    domains, entries = _domains_of(starts)
    rows = []
    if single is not None:
        m = single["matrix"]
        rows.append(["Single (in-domain)", *[_cell(m.get(d, {}).get(d)) for d in domains], _cell(single.get("in_domain_mean"))])
    for r in variants:
        for s in r.get("starts") or [r]:
            label = f"{s.get('start') or '?'} model → fine-tuned"
            rows.append([(f"{model_name(r)}: " if len(variants) > 1 else "") + label, *_cells(s, domains), _avg(s)])
    notes = _notes(starts, entries)
    if len(variants) == 1:
        notes.insert(0, f"Model: {model_name(variants[0])}.")
    return PaperTable("table8", "Table 8 — E4 Full fine-tuning on the target's training set, compared with "
                      "single-domain models", ["Model", *domains, "Avg."], rows, notes)


def table9(variants: list[dict[str, Any]]) -> PaperTable:
    """``Training sources | Model | AUC`` on UBnormal's test set: the single-source reference (``UBN only``,
    from the first variant that trained it), then one row per variant trained with the other sources."""
    ubn = variants[0].get("open_set", {}).get("domain", "UBN")
    n_other = len([d for d in variants[0]["per_domain"] if d != ubn])
    rows = []
    ref = next((r for r in variants if r.get("reference")), None)
    if ref is not None:
        rows.append([f"{ubn} only", head_name(ref), domain_cell(ref["reference"][ubn], _n(ref))])
    for i, r in enumerate(variants):
        sources = f"MDVAD ({n_other}) + {ubn}" if i == 0 else f"MDVAD + {ubn}"
        rows.append([sources, model_name(r), _cells(r, [ubn])[0]])
    resplit = variants[0].get("open_set", {}).get("resplit", "?")
    notes = _notes(variants, {ubn: variants[0]["per_domain"].get(ubn, {})}, avg=False)
    notes.append(f"{ubn} re-split: ubnormal.resplit={resplit}"
                 + (" (test anomaly types unseen in training)." if resplit == "disjoint" else
                    " (abnormal shortfall filled from the test split: test types seen in training)."))
    return PaperTable("table9", f"Table 9 — Open-set scenario on UBnormal (target: {ubn} test set)",
                      ["Training sources", "Model", headline_name(variants[0], ubn)], rows, notes)


def headline_name(r: dict[str, Any], domain: str) -> str:
    return "AP" if headline(r["per_domain"].get(domain, {})) == "ap" else "AUC"


def table_a5(variants: list[dict[str, Any]]) -> PaperTable:
    """``Model | <the other domains> | Avg.``: the open-set models (UBnormal as an extra source) on the others."""
    ubn = variants[0].get("open_set", {}).get("domain", "UBN")
    domains, entries = _domains_of(variants, exclude=(ubn,))
    rows = [[model_name(r), *_cells(r, domains), _avg(r, "others_mean_auc")] for r in variants]
    return PaperTable("tableA5", f"Table A5 — E1 with {ubn} as an extra source, tested on the other targets",
                      ["Model", *domains, "Avg."], rows, _notes(variants, entries, f" (without {ubn})"))


def open_set_tables(results: list[dict[str, Any]]) -> list[PaperTable]:
    """Tables 9 and A5 of one or more ``ubnormal-open`` results (one per variant)."""
    return [table9(results), table_a5(results)]


def table10(rows: list[dict[str, Any]]) -> PaperTable:
    """``Protocol | Model | <domains> | Avg.``: one row per (protocol, method[, E4 start]), protocols in the order
    given (``run_comparison`` rows of several protocols)."""
    domains, entries = _domains_of(rows)
    body = [[r["protocol"] + (f" (from {r['start']})" if r.get("start") else ""), model_name(r), *_cells(r, domains),
             _avg(r)] for r in rows]
    notes = _notes(rows, entries)
    if any(r.get("entry") for r in rows):
        notes.append(f"--methods {','.join(dict.fromkeys(r['entry'] for r in rows if r.get('entry')))}.")
    return PaperTable("table10", "Table 10 — Weakly-supervised VAD models under the protocols",
                      ["Protocol", "Model", *domains, "Avg."], body, notes)


def in_domain_table(single: dict[str, Any], domains: list[str]) -> PaperTable:
    """The paper's own row of a comparison table (BN-WVAD Tables 1, 2, 6; CoMo Table 1): ``Method | <domain>
    (AUC or AP) ...``, each the in-domain result of a ``single`` run (trained and tested on that domain)."""
    per = single["per_domain"]
    heads = [f"{d} ({'AP' if headline(per.get(d, {})) == 'ap' else 'AUC'})" for d in domains]
    n = _n(single)
    row = [f"{model_name(single)} (omnivad)", *[domain_cell(per[d], n) if d in per else "–" for d in domains]]
    return PaperTable("in_domain", "The paper's row: in-domain results (trained and tested on each dataset)",
                      ["Method", *heads], [row], _notes([single], {d: per[d] for d in domains if d in per}, avg=False))


def uvad_table1(result: dict[str, Any]) -> PaperTable:
    """wOCC-WS Table 1's rows of this run: ``Method | <domain> AUC % ...`` at the stopping point (the last loop)."""
    u = result.get("config", {}).get("uvad", {})
    per = result["per_domain"]
    domains = list(per)

    def row(label: str, key: str) -> list[str]:
        return [label, *[_cell(per[d]["stopping_point"].get(key)) for d in domains]]

    rows = [row(f"Ours, wOCC ({u.get('occ', '?')}, trained with {u.get('ws', '?')})", "occ_auc"),
            row(f"Ours, WS ({u.get('ws', '?')})", "ws_auc")]
    return PaperTable("uvad_table1", "Table 1 — unsupervised setting (frame AUC %)",
                      ["Method", *[f"{d} AUC %" for d in domains], ], rows,
                      ["Frame-level ROC-AUC (%) at the stopping point (last loop of the last module); no labels used."])
