"""Result tables in the papers' layouts (metrics in %, mean ± sample std over n folds).

Every table says what its numbers are: the metric of each column (AUC, or AP for a domain whose headline
metric is ``ap``), the statistics (mean ± sample std, ddof=1, over n folds; no ± with one fold) and the
model-selection rule (best-test, the papers' optimistic practice, is flagged on every row it concerns).
"""

from __future__ import annotations

from typing import Any

#: What each ``train.selection`` value means, in every table and results.json (``selection_rule``).
SELECTION_RULES = {
    "best-val": "best validation AUC (validation split carved from the training set, scored every train.eval_every steps)",
    "final": "final weights (no selection)",
    "best-test": "best TEST AUC during training (the papers' optimistic practice: not an unbiased estimate)",
}
NO_AC = "—"


def selection_rule(selection: str | None) -> str:
    return SELECTION_RULES.get(selection or "", f"unknown ({selection})")


def _pct(x: float | None, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}"


def _cell(mean: float | None, std: float | None = None, n: int = 1) -> str:
    """``84.53 ± 1.20`` (mean ± sample std in %); no ± when the std was not measured (one fold)."""
    if mean is None or mean != mean:  # NaN
        return "–"
    s = _pct(mean)
    if n > 1 and std is not None:
        s += f" ± {_pct(std)}"
    return s


METHOD_NAMES = {"mil": "MIL", "null-mil": "Null-MIL", "nullang-mil": "NullAng-MIL", "mmil": "MMIL", "bn-wvad": "BN-WVAD",
                "como": "CoMo"}


def method_label(method: str, ac: bool | None, trunk: str | None = None) -> tuple[str, str]:
    """(model name, AC mark): ✓ AC on, ✗ AC off, — the method has no AC classifier (``ac`` is None).
    A non-default trunk is named after the heads: ``NullAng-MIL @ BN-WVAD``."""
    name = METHOD_NAMES.get(method, method)
    if trunk and trunk != "mdvad":
        name += f" @ {METHOD_NAMES.get(trunk, trunk)}"
    return name, NO_AC if ac is None else ("✓" if ac else "✗")


def headline(entry: dict[str, Any]) -> str:
    """The metric a table shows for a domain: ``auc`` unless the domain is declared XD-style (``ap``)."""
    return "ap" if entry.get("headline") == "ap" else "auc"


def domain_cell(entry: dict[str, Any], n: int) -> str:
    m = headline(entry)
    return _cell(entry.get(m), entry.get(f"{m}_std"), n)


def _n(r: dict[str, Any]) -> int:
    return int(r.get("n") or r.get("folds") or 1)


def _stats_note(n: int) -> str:
    return f"mean ± sample std (ddof=1) over n={n} folds" if n > 1 else "n=1 fold (no std)"


def _metric_note(per_domain: dict[str, dict[str, Any]]) -> str:
    ap = [d for d, e in per_domain.items() if headline(e) == "ap"]
    if not ap:
        return "Frame-level ROC-AUC (%)"
    return f"Frame-level ROC-AUC (%), AP (%, sklearn average precision) for {', '.join(ap)}"


def _selection_note(sel: str | None) -> str:
    flag = " [BEST-TEST: selected on the test set, optimistic]" if sel == "best-test" else ""
    return f"model selection: {sel} = {selection_rule(sel)}{flag}"


def protocol_table(results: list[dict[str, Any]]) -> str:
    """E1–E4 layout (MDVAD Tables 5–8, 10): one row per method, one column per target, then Avg. (AUC)."""
    if not results:
        return ""
    domains = list(results[0]["per_domain"])
    heads = [f"{d} (AP)" if headline(results[0]["per_domain"][d]) == "ap" else d for d in domains]
    lines = [
        f"### {results[0]['protocol']}" + (f" (start: {results[0]['start']})" if results[0].get("start") else ""),
        "",
        "| Head | AC | " + " | ".join(heads) + " | Avg. AUC | n |",
        "|---|---|" + "---|" * (len(domains) + 2),
    ]
    for r in results:
        n = _n(r)
        head, ac = method_label(r["method"], r.get("ac"), r.get("trunk"))
        if r.get("selection") == "best-test":
            head += " (best-test)"
        cells = [domain_cell(r["per_domain"][d], n) for d in domains]
        avg = _cell(r["mean_auc"], r.get("mean_auc_std"), n)
        lines.append(f"| {head} | {ac} | " + " | ".join(cells) + f" | {avg} | {n} |")
    lines.append("")
    n0 = _n(results[0])
    lines.append(f"{_metric_note(results[0]['per_domain'])}, {_stats_note(n0)}; {_selection_note(results[0].get('selection'))}."
                 + (f" Frame alignment: {results[0]['align']}." if results[0].get("align") else ""))
    lines.append(f"AC: ✓ on, ✗ off, {NO_AC} the method has no Abnormal-Conflict classifier.")
    return "\n".join(lines) + "\n"


def cross_domain_table(result: dict[str, Any]) -> str:
    """Single-domain cross matrix (MDVAD Table 4): rows = source, columns = target, plus Out Avg."""
    m = result["matrix"]
    domains = list(m)
    lines = [
        "### Single-domain cross matrix (rows: source, columns: target)",
        "",
        "| Source \\ Target | " + " | ".join(domains) + " |",
        "|---|" + "---|" * len(domains),
    ]
    for s in domains:
        cells = []
        for t in domains:
            c = _cell(m[s][t])
            cells.append(f"**{c}**" if s == t else c)
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("| Out Avg. | " + " | ".join(_cell(result["out_avg"][t]) for t in domains) + " |")
    lines.append("| (in-domain) | " + " | ".join(f"({_cell(m[t][t])})" for t in domains) + " |")
    lines.append("")
    lines.append(
        f"Frame-level ROC-AUC (%). Out Avg. mean {_cell(result['out_avg_mean'])}; in-domain mean "
        f"{_cell(result['in_domain_mean'])}; mean over {result['folds']} fold(s); "
        f"{_selection_note(result.get('selection'))}."
    )
    return "\n".join(lines) + "\n"


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """MDVAD Table 10 layout: one row per compared method (``run_comparison`` rows), one column per domain
    (its headline metric), then Avg. AUC, n and the row's selection rule. MDVAD heads with AC read
    ``NullAng-MIL + AC``; other methods their own name."""
    if not rows:
        return ""
    domains: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    for r in rows:
        for d, e in r["per_domain"].items():
            if d not in domains:
                domains.append(d)
                entries[d] = e
    heads = [f"{d} (AP)" if headline(entries[d]) == "ap" else d for d in domains]
    lines = [
        f"### Table 10 layout: {rows[0]['protocol']}",
        "",
        "| Protocol | Model | AC | " + " | ".join(heads) + " | Avg. AUC | n | Selection |",
        "|---|---|---|" + "---|" * (len(domains) + 3),
    ]
    for r in rows:
        n = _n(r)
        name, ac = method_label(r["method"], r.get("ac"), r.get("trunk"))
        if ac == "✓":
            name += " + AC"
        proto = r["protocol"] + (f" (from {r['start']})" if r.get("start") else "")
        cells = [domain_cell(r["per_domain"][d], n) if d in r["per_domain"] else "–" for d in domains]
        avg = _cell(r["mean_auc"], r.get("mean_auc_std"), n)
        sel = r.get("selection") or "?"
        sel_cell = "**best-test (optimistic)**" if sel == "best-test" else sel
        lines.append(f"| {proto} | {name} | {ac} | " + " | ".join(cells) + f" | {avg} | {n} | {sel_cell} |")
    lines.append("")
    ns = sorted({_n(r) for r in rows})
    sels = list(dict.fromkeys(r.get("selection") or "?" for r in rows))
    lines.append(f"{_metric_note(entries)}, " + "; ".join(_stats_note(n) for n in ns) + "; "
                 + "; ".join(_selection_note(s) for s in sels) + "; "
                 f"--methods {','.join(dict.fromkeys(r['entry'] for r in rows))}.")
    lines.append(f"AC: ✓ on, ✗ off, {NO_AC} the method has no Abnormal-Conflict classifier.")
    return "\n".join(lines) + "\n"


def category_table(per_category: dict[str, dict[str, dict[str, Any]]], negatives: str = "normal") -> str:
    """Per-category AUC and AP (%) of each test domain (``results.json`` ``per_category``; BN-WVAD Table 9,
    MDVAD Fig. A4): one row per (domain, category), mean ± sample std over n folds."""
    pool = "the category's videos plus every normal test video of the domain" if negatives == "normal" else \
        "the category's videos only"
    lines = ["### Per-category frame-level AUC / AP (%)", "",
             "| Domain | Category | AUC | AP | videos (category / pooled) | n |", "|---|---|---|---|---|---|"]
    for d, cats in per_category.items():
        for c, e in cats.items():
            n = int(e.get("n", 1))
            lines.append(f"| {d} | {c} | {_cell(e.get('auc'), e.get('auc_std'), n)} | "
                         f"{_cell(e.get('ap'), e.get('ap_std'), n)} | {e.get('n_category_videos')} / "
                         f"{e.get('n_videos')} | {n} |")
    lines += ["", f"Each row pools the frames of {pool}; multi-label videos count in each of their categories; "
              + _stats_note(max([int(e.get("n", 1)) for cats in per_category.values() for e in cats.values()] or [1])) + "."]
    return "\n".join(lines) + "\n"


def _square_table(title: str, matrix: dict[str, dict[str, float]], domains: list[str], fmt: Any,
                  lower: dict[str, dict[str, float]] | None = None) -> list[str]:
    """Rows = ``domains`` (source), columns = ``domains``; cell ``matrix[i][j]`` (``lower[i][j]`` below the
    diagonal when given); ``–`` on the diagonal and where a value is missing."""
    lines = [title, "", "| | " + " | ".join(domains) + " |", "|---|" + "---|" * len(domains)]
    for a, i in enumerate(domains):
        cells = []
        for b, j in enumerate(domains):
            src = lower if lower is not None and b < a else matrix
            v = src.get(i, {}).get(j)
            cells.append("–" if a == b or v is None or v != v else fmt(v))
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    return lines


def conflict_table(result: dict[str, Any]) -> str:
    """MDVAD Table A2 layout: Eq. 8 (mean of relative FPR and FNR) per source (rows) and target (columns)."""
    domains = list(result["domains"])
    lines = _square_table("### Abnormal conflict: relative FPR/FNR (MDVAD Eq. 8; rows: source, columns: target)",
                          result["matrix"], domains, lambda v: f"{v:.3f}")
    lines += ["", f"AC_ij = ((FPR_ij − FPR_jj) + (FNR_ij − FNR_jj)) / 2 at frame level, threshold "
              f"{result['threshold']} ({result['prediction']}); mean over {result['n']} fold(s)."]
    return "\n".join(lines) + "\n"


def discrepancy_table(result: dict[str, Any]) -> str:
    """MDVAD Table 3 layout: upper-right = EMD between normal features, lower-left = between abnormal class-wise
    features."""
    lines = _square_table("### Scene discrepancy: EMD (upper-right: normal features; lower-left: abnormal, class-wise)",
                          result["normal"], list(result["domains"]), lambda v: f"{v:.2f}", lower=result["abnormal"])
    lines += ["", f"Reading: {result['reading']}; solver: {result['solver_used']}; split {result['split']!r}."]
    return "\n".join(lines) + "\n"
