"""Result tables in the papers' layouts (AUC in %, mean over folds, ± std when there are several)."""

from __future__ import annotations

from typing import Any


def _cell(mean: float | None, std: float | None = None, folds: int = 1) -> str:
    if mean is None or mean != mean:  # NaN
        return "–"
    s = f"{100 * mean:.2f}"
    if folds > 1 and std is not None:
        s += f" ± {100 * std:.2f}"
    return s


METHOD_NAMES = {"mil": "MIL", "null-mil": "Null-MIL", "nullang-mil": "NullAng-MIL", "mmil": "MMIL", "bn-wvad": "BN-WVAD",
                "como": "CoMo"}


def method_label(method: str, ac: bool, trunk: str | None = None) -> tuple[str, str]:
    """(model name, AC mark); a non-default trunk is named after the heads: ``NullAng-MIL @ BN-WVAD``."""
    name = METHOD_NAMES.get(method, method)
    if trunk and trunk != "mdvad":
        name += f" @ {METHOD_NAMES.get(trunk, trunk)}"
    return name, "✓" if ac else "–"


def protocol_table(results: list[dict[str, Any]]) -> str:
    """E1–E4 layout (MDVAD Tables 5–8, 10): one row per method, one column per target, then Avg."""
    if not results:
        return ""
    domains = list(results[0]["per_domain"])
    lines = [
        f"### {results[0]['protocol']}" + (f" (start: {results[0]['start']})" if results[0].get("start") else ""),
        "",
        "| Head | AC | " + " | ".join(domains) + " | Avg. |",
        "|---|---|" + "---|" * (len(domains) + 1),
    ]
    for r in results:
        head, ac = method_label(r["method"], r["ac"], r.get("trunk"))
        cells = [_cell(r["per_domain"][d]["auc"], r["per_domain"][d].get("auc_std"), r["folds"]) for d in domains]
        avg = _cell(r["mean_auc"], r.get("mean_auc_std"), r["folds"])
        lines.append(f"| {head} | {ac} | " + " | ".join(cells) + f" | {avg} |")
    lines.append("")
    sel = results[0].get("selection", "?")
    note = " (best on the TEST set, as the papers did: optimistic)" if sel == "best-test" else ""
    lines.append(f"Frame-level ROC-AUC (%), mean over {results[0]['folds']} fold(s); model selection: {sel}{note}.")
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
        f"Out Avg. mean {_cell(result['out_avg_mean'])}; in-domain mean {_cell(result['in_domain_mean'])}; "
        f"mean over {result['folds']} fold(s)."
    )
    return "\n".join(lines) + "\n"


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """MDVAD Table 10 layout: one row per compared method (``run_comparison`` rows), one AUC column per domain,
    then Avg. MDVAD heads with AC read ``NullAng-MIL + AC``; other methods their own name."""
    if not rows:
        return ""
    domains: list[str] = []
    for r in rows:
        domains += [d for d in r["per_domain"] if d not in domains]
    lines = [
        f"### Table 10 layout: {rows[0]['protocol']}",
        "",
        "| Protocol | Model | " + " | ".join(domains) + " | Avg. |",
        "|---|---|" + "---|" * (len(domains) + 1),
    ]
    for r in rows:
        name, ac = method_label(r["method"], r["ac"], r.get("trunk"))
        if ac == "✓" and r["method"] in ("mil", "null-mil", "nullang-mil"):
            name += " + AC"
        proto = r["protocol"] + (f" (from {r['start']})" if r.get("start") else "")
        cells = [_cell(r["per_domain"][d]["auc"], r["per_domain"][d].get("auc_std"), r["folds"]) if d in r["per_domain"]
                 else "–" for d in domains]
        avg = _cell(r["mean_auc"], r.get("mean_auc_std"), r["folds"])
        lines.append(f"| {proto} | {name} | " + " | ".join(cells) + f" | {avg} |")
    lines.append("")
    sel = rows[0].get("selection") or "?"
    lines.append(f"Frame-level ROC-AUC (%), mean over {rows[0]['folds']} fold(s); model selection: {sel}; "
                 f"--methods {','.join(dict.fromkeys(r['entry'] for r in rows))}.")
    return "\n".join(lines) + "\n"
