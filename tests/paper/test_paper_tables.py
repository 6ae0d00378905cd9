"""MDVAD's Tables 5–10 and A5 in the paper's layout, from fabricated results.json payloads: header, row order,
the reference rows and cell formatting (mean ± sample std in %, no ± with one fold)."""

from __future__ import annotations

import csv
import io

from omnivad.report import paper_tables as pt

VARIANTS = (("mil", False), ("mil", True), ("null-mil", False), ("null-mil", True), ("nullang-mil", False),
            ("nullang-mil", True))


def result(method: str, ac: bool, per: dict[str, tuple[float, float | None]], mean: tuple[float, float | None],
           n: int = 3, **extra) -> dict:
    per_domain = {d: {"auc": m, "auc_std": s, "ap": m - 0.1, "ap_std": s, "headline": "ap" if d == "XD" else "auc"}
                  for d, (m, s) in per.items()}
    return {"protocol": "E1", "method": method, "ac": ac, "trunk": "mdvad", "per_domain": per_domain,
            "mean_auc": mean[0], "mean_auc_std": mean[1], "n": n, "folds": n, "selection": "final", **extra}


def six(n: int = 3) -> list[dict]:
    out = []
    for i, (m, ac) in enumerate(VARIANTS):
        out.append(result(m, ac, {"ST": (0.9 + i / 1000, 0.01), "UCFC": (0.8, 0.0123), "XD": (0.85, 0.02)},
                          (0.8512 + i / 100, 0.0034), n=n))
    return out


SINGLE = {"protocol": "single", "method": "mil", "ac": False, "matrix": {
    "UCFC": {"UCFC": 0.7793, "XD": 0.6707, "ST": 0.5084}, "XD": {"UCFC": 0.6588, "XD": 0.8323, "ST": 0.4955},
    "ST": {"UCFC": 0.5049, "XD": 0.6153, "ST": 0.9079}},
    "out_avg": {"UCFC": 0.5819, "XD": 0.643, "ST": 0.502}, "out_avg_mean": 0.5756, "in_domain_mean": 0.8398,
    "per_domain": {}, "n": 3, "folds": 3}


def test_table5_layout_exactly():
    t = pt.table5(six(), SINGLE)
    md = t.markdown().splitlines()
    assert md[0] == "### Table 5 — E1 Held-in: trained on all domains, tested on each"
    assert md[2] == "| Head | AC | UCFC | XD | ST | Avg. |"  # the paper's column order, not the run's
    assert md[3] == "|---|---|---|---|---|---|"
    assert md[4] == "| Single-domain Out Avg. (in-domain) |  | 58.19 (77.93) | 64.30 (83.23) | 50.20 (90.79) | 57.56 (83.98) |"
    assert md[5] == "| MIL | – | 80.00 ± 1.23 | 75.00 ± 2.00 | 90.00 ± 1.00 | 85.12 ± 0.34 |"  # XD: its AP
    assert [r[:2] for r in t.rows[1:]] == [["MIL", "–"], ["MIL", "✓"], ["Null-MIL", "–"], ["Null-MIL", "✓"],
                                          ["NullAng-MIL", "–"], ["NullAng-MIL", "✓"]]
    assert t.rows[6][-1] == "90.12 ± 0.34" and t.rows[6][4] == "90.50 ± 1.00"
    assert any("mean ± sample std (ddof=1) over n=3 folds" in n for n in t.notes)
    assert any("AP (%, sklearn average precision) for XD" in n for n in t.notes)
    rows = list(csv.reader(io.StringIO(t.csv())))
    assert rows[0] == ["Head", "AC", "UCFC", "XD", "ST", "Avg."] and rows[2] == md[5].strip("| ").split(" | ")


def test_one_fold_has_no_std_and_table6_7_rows():
    t6 = pt.table6(six(n=1), SINGLE)
    assert t6.header == ["Head", "AC", "UCFC", "XD", "ST", "Avg."]
    assert t6.rows[0] == ["Single-domain Out Avg.", "", "58.19", "64.30", "50.20", "57.56"]
    assert t6.rows[1] == ["MIL", "–", "80.00", "75.00", "90.00", "85.12"]
    assert any("n=1 fold (no std)" in n for n in t6.notes)
    t7 = pt.table7(six())
    assert t7.title.startswith("Table 7 — E3") and len(t7.rows) == 6 and t7.rows[0][0] == "MIL"


def test_table8_single_then_both_starts():
    starts = [result("nullang-mil", True, {"UCFC": (0.7862, 0.01), "ST": (0.9117, None)}, (0.85, 0.01), start=s)
              for s in ("E1", "E2")]
    payload = {"method": "nullang-mil", "ac": True, "trunk": "mdvad", "starts": starts, "per_domain": starts[0]["per_domain"]}
    t = pt.table8([payload], SINGLE)
    assert t.header == ["Model", "UCFC", "ST", "Avg."]
    assert [r[0] for r in t.rows] == ["Single (in-domain)", "E1 model → fine-tuned", "E2 model → fine-tuned"]
    assert t.rows[0] == ["Single (in-domain)", "77.93", "90.79", "83.98"]
    assert t.rows[1] == ["E1 model → fine-tuned", "78.62 ± 1.00", "91.17", "85.00 ± 1.00"]  # ST: no std measured
    assert t.notes[0] == "Model: NullAng-MIL + AC."


def test_table9_and_a5():
    res = []
    for i, (m, ac) in enumerate(VARIANTS):
        r = result(m, ac, {"UCFC": (0.8, 0.01), "UBN": (0.7 + i / 100, 0.02), "ST": (0.9, 0.01)}, (0.8, 0.01),
                   others_mean_auc=0.85, others_mean_auc_std=0.005, open_set={"domain": "UBN", "resplit": "disjoint"},
                   reference={"UBN": {"auc": 0.7513, "auc_std": 0.01, "headline": "auc"}} if i == 0 else {})
        res.append(r)
    t9, a5 = pt.open_set_tables(res)
    assert t9.header == ["Training sources", "Model", "AUC"]
    assert t9.rows[:3] == [["UBN only", "MIL", "75.13 ± 1.00"], ["MDVAD (2) + UBN", "MIL", "70.00 ± 2.00"],
                           ["MDVAD + UBN", "MIL + AC", "71.00 ± 2.00"]]
    assert [r[1] for r in t9.rows[1:]] == ["MIL", "MIL + AC", "Null-MIL", "Null-MIL + AC", "NullAng-MIL",
                                           "NullAng-MIL + AC"]
    assert "ubnormal.resplit=disjoint" in t9.notes[-1] and not any("Avg." in n for n in t9.notes)
    assert a5.header == ["Model", "UCFC", "ST", "Avg."]  # UBnormal is not a column of Table A5
    assert a5.rows[5] == ["NullAng-MIL + AC", "80.00 ± 1.00", "90.00 ± 1.00", "85.00 ± 0.50"]


def test_table10_across_protocols():
    rows = [dict(result("mmil", None, {"XD": (0.8134, 0.01), "UCFC": (0.7793, 0.02)}, (0.8, 0.01)), protocol=p,
                 entry="mmil") for p in ("E1", "E2")]
    rows.append(dict(result("nullang-mil", True, {"UCFC": (0.7721, None), "XD": (0.8209, None)}, (0.8, None), n=1),
                     protocol="E4", start="E1", entry="nullang-mil+ac"))
    t = pt.table10(rows)
    assert t.header == ["Protocol", "Model", "UCFC", "XD", "Avg."]
    assert [r[:2] for r in t.rows] == [["E1", "MMIL"], ["E2", "MMIL"], ["E4 (from E1)", "NullAng-MIL + AC"]]
    assert t.rows[0][2:] == ["77.93 ± 2.00", "71.34 ± 1.00", "80.00 ± 1.00"] and t.rows[2][2:] == ["77.21", "72.09", "80.00"]
    assert t.notes[-1] == "--methods mmil,nullang-mil+ac."
