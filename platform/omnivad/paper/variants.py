"""``omnivad run --protocol P --variants paper``: the paper's Head × AC variants of one protocol and, where its
table has one, the single-domain reference, written as the paper's table (:mod:`omnivad.report.paper_tables`).
And Table 10 across protocols (``omnivad run --methods ... --protocols E1,E2``).

Every variant is an ordinary protocol run (its own config hash and results directory, reused when finished);
this module only picks the runs and lays out their ``results.json``. Output, under ``storage.out``:
``<protocol>-paper-<time>/`` with ``<table>.md``, ``<table>.csv``, ``results.md`` (every table, what
``omnivad plot``'s report shows) and ``paper.json`` (the payloads the tables were built from).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omnivad import storage
from omnivad.config import Config, dump
from omnivad.errors import ConfigError
from omnivad.protocols import runner
from omnivad.report import paper_tables as pt

#: The six Head × AC variants of Tables 5–7, 9 and A5, in the paper's row order (``--methods`` entries).
PAPER_VARIANTS = ("mil+noac", "mil+ac", "null-mil+noac", "null-mil+ac", "nullang-mil+noac", "nullang-mil+ac")
#: The single-domain reference model (Table 4: single-head MIL without AC), also Table 9's "UBN only" row.
REFERENCE_ENTRY = "mil+noac"

Tables = Callable[[list[dict[str, Any]], dict[str, Any] | None], list[pt.PaperTable]]


@dataclass(frozen=True)
class Layout:
    """What ``--variants paper`` runs for one protocol: its variants, whether the single-domain reference is in
    the table, extra config of every variant run, and the tables built from the results."""

    variants: tuple[str, ...]
    reference: bool
    tables: Tables
    overrides: tuple[tuple[str, Any], ...] = ()


LAYOUTS: dict[str, Layout] = {
    "E1": Layout(PAPER_VARIANTS, True, lambda v, s: [pt.table5(v, s)]),
    "E2": Layout(PAPER_VARIANTS, True, lambda v, s: [pt.table6(v, s)]),
    "E3": Layout(PAPER_VARIANTS, False, lambda v, s: [pt.table7(v)]),
    # Table 8 shows one model (NullAng-MIL + AC, judging by Table 10) from both starts
    "E4": Layout(("nullang-mil+ac",), True, lambda v, s: [pt.table8(v, s)], (("protocol.e4_start", "both"),)),
    "ubnormal-open": Layout(PAPER_VARIANTS, False, lambda v, s: pt.open_set_tables(v)),
}


def layout(protocol: str) -> Layout:
    if protocol not in LAYOUTS:
        raise ConfigError(f"--variants paper: protocol {protocol!r} has no paper table (one of {', '.join(LAYOUTS)})")
    return LAYOUTS[protocol]


def variant_config(cfg: Config, protocol: str, entry: str) -> Config:
    """The run of one variant: the entry's method/AC plus the layout's overrides; in ``ubnormal-open`` only the
    reference entry trains the single-source reference."""
    extra = dict(layout(protocol).overrides)
    if protocol == "ubnormal-open":
        extra["ubnormal.reference"] = entry == REFERENCE_ENTRY
    return runner.entry_config(cfg, entry, **{"protocol.name": protocol, **extra})


def build_tables(protocol: str, results: list[dict[str, Any]], single: dict[str, Any] | None) -> list[pt.PaperTable]:
    """The paper's table(s) of ``protocol`` from finished payloads (the variants in order, the reference)."""
    return layout(protocol).tables(results, single)


def run_paper(cfg: Config) -> dict[str, Any]:
    """Run ``cfg.protocol``'s paper variants (and reference), write the tables; return ``paper.json``'s payload
    with ``results_uri`` (its directory), ``table`` (the Markdown) and ``tables`` ({name: PaperTable})."""
    protocol = runner.get_protocol(cfg.protocol.name).name
    lay = layout(protocol)
    configs = [variant_config(cfg, protocol, e) for e in lay.variants]  # every entry checked before training
    results = []
    for i, (entry, vcfg) in enumerate(zip(lay.variants, configs), start=1):
        runner.log(f"paper variants: {protocol} {entry} ({i}/{len(configs)})")
        results.append(_strip(runner.run_protocol(vcfg)) | {"entry": entry})
    single = None
    if lay.reference:
        runner.log(f"paper variants: single-domain reference {REFERENCE_ENTRY}")
        single = _strip(runner.run_protocol(runner.entry_config(cfg, REFERENCE_ENTRY, **{"protocol.name": "single"})))
    tables = build_tables(protocol, results, single)
    payload = {"protocol": protocol, "variants": list(lay.variants), "results": results, "reference": single,
               "config": dump(cfg)}
    out_dir = write_tables(cfg.storage.out, f"{protocol}-paper", tables, payload)
    return payload | {"results_uri": out_dir, "table": "\n".join(t.markdown() for t in tables),
                      "tables": {t.name: t for t in tables}}


def _strip(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "table"}


def write_tables(out: str, stem: str, tables: list[pt.PaperTable], payload: dict[str, Any]) -> str:
    """``<out>/<stem>-<time>/``: each table's ``.md`` and ``.csv``, ``results.md`` (all of them) and ``paper.json``."""
    out_dir = storage.join(out, f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    fs, root = storage.filesystem(out_dir)
    for t in tables:
        storage.write_bytes_atomic(fs, storage.join(root, f"{t.name}.md"), t.markdown().encode())
        storage.write_bytes_atomic(fs, storage.join(root, f"{t.name}.csv"), t.csv().encode())
    storage.write_bytes_atomic(fs, storage.join(root, "results.md"), "\n".join(t.markdown() for t in tables).encode())
    storage.write_json_atomic(fs, storage.join(root, "paper.json"), payload | {"tables": [t.name for t in tables]})
    return out_dir


def run_table10(cfg: Config, entries: list[str], protocols: list[str]) -> dict[str, Any]:
    """Table 10 across protocols in one command: :func:`runner.run_comparison` per protocol (each writes its own
    ``table10.*``), then one table of every row, protocols in the order given, under ``<out>/table10-<time>/``."""
    names = [runner.get_protocol(p).name for p in protocols]  # every protocol checked before training
    if not names:
        raise ConfigError("--protocols: expected at least one protocol, e.g. E1,E2")
    rows: list[dict[str, Any]] = []
    for name in names:
        pcfg = cfg.model_copy(update={"protocol": cfg.protocol.model_copy(update={"name": name})})
        rows.extend(runner.run_comparison(pcfg, entries)["rows"])
    table = pt.table10(rows)
    payload = {"protocols": names, "methods": list(entries), "rows": rows, "config": dump(cfg)}
    out_dir = write_tables(cfg.storage.out, "table10", [table], payload)
    return payload | {"results_uri": out_dir, "table": table.markdown(), "tables": {table.name: table}}
