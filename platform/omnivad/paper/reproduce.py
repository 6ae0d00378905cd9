"""``omnivad reproduce --paper mdvad|bn-wvad|como|uvad --corpus URI``: every table of a paper that the corpus
supports, in the paper's layout, into one report (``report.md``, ``report/index.html``, ``reproduce.json``).

The tables of each paper are one data table, :data:`TABLES`: one :class:`TableEntry` per table (paper, name,
what it needs from the corpus in words, the check of that need, how to produce it). Adding an analysis or a
table is one line there (or :func:`register_table` from outside). A table the corpus does not support is
skipped with the check's reason, printed in the plan and written into the report.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnivad import storage
from omnivad.config import Config
from omnivad.errors import ConfigError

PAPERS = ("mdvad", "bn-wvad", "como", "uvad")

#: Domain names a paper's dataset may have in a corpus (first match wins).
ALIASES = {"UCF": ("UCFC", "UCF", "ucf-crime"), "XD": ("XD", "xd-violence"), "ST": ("ST", "SHT", "shanghaitech"),
           "AV": ("AV", "Avenue", "avenue")}


@dataclass(frozen=True)
class CorpusView:
    """What planning needs of a corpus: its domains in order and each domain's splits."""

    uri: str
    splits: dict[str, list[str]]
    ubnormal: str = "UBN"

    @classmethod
    def of(cls, corpus: Any, cfg: Config) -> CorpusView:
        """The corpus's domains (only those of ``corpus.domains`` when it is set, each checked)."""
        splits = {d: list(e.splits) for d, e in corpus.manifest.domains.items()}
        for d in cfg.corpus.domains or []:
            if d not in splits:
                raise ConfigError(f"corpus.domains: {d!r} is not in {corpus.uri} ({', '.join(splits)})")
        keep = cfg.corpus.domains or list(splits)
        return cls(corpus.uri, {d: splits[d] for d in keep}, cfg.ubnormal.domain)

    @property
    def domains(self) -> list[str]:
        return list(self.splits)

    def tested(self) -> list[str]:
        """Domains with a train and a test split (what a WVAD run trains and tests on)."""
        return [d for d, s in self.splits.items() if "train" in s and "test" in s]

    def others(self) -> list[str]:
        """The tested domains but UBnormal (the MDVAD sources)."""
        return [d for d in self.tested() if d != self.ubnormal]

    def find(self, dataset: str) -> str | None:
        return next((d for d in ALIASES.get(dataset, (dataset,)) if d in self.tested()), None)


Check = Callable[[CorpusView], str | None]  # None: supported; else why not
Produce = Callable[[Config, CorpusView], dict[str, Any]]  # {"markdown": str, "uri": str | None}


@dataclass(frozen=True)
class TableEntry:
    """One table of a paper: ``needs`` says in words what ``check`` tests; ``produce`` runs it."""

    paper: str
    name: str
    needs: str
    check: Check
    produce: Produce


@dataclass
class PlanRow:
    entry: TableEntry
    reason: str | None = None  # None: will run
    result: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- checks

def needs_domains(n: int) -> Check:
    def check(v: CorpusView) -> str | None:
        got = v.others()
        return None if len(got) >= n else (f"needs {n} domains with train and test splits besides {v.ubnormal}, "
                                           f"the corpus has {len(got)} ({', '.join(got) or 'none'})")
    return check


def needs_ubnormal(v: CorpusView) -> str | None:
    if v.ubnormal not in v.splits:
        return f"no UBnormal domain {v.ubnormal!r} in the corpus (ubnormal.domain; domains: {', '.join(v.domains)})"
    if v.ubnormal not in v.tested():
        return f"UBnormal domain {v.ubnormal!r} lacks a train or test split (has {', '.join(v.splits[v.ubnormal])})"
    return None if v.others() else f"no training domain besides {v.ubnormal!r}"


def needs_dataset(*datasets: str) -> Check:
    def check(v: CorpusView) -> str | None:
        missing = [d for d in datasets if v.find(d) is None]
        return None if not missing else (
            "needs " + ", ".join(f"{d} (a domain named {' or '.join(ALIASES.get(d, (d,)))})" for d in missing)
            + " with train and test splits")
    return check


def needs_any_tested(v: CorpusView) -> str | None:
    return None if v.tested() else "no domain with train and test splits"


def not_automated(why: str) -> Check:
    return lambda v: f"not automated: {why}"


# ---------------------------------------------------------------------------------------------- producers

def _cfg(cfg: Config, entry: str | None = None, **overrides: Any) -> Config:
    from omnivad.protocols.runner import entry_config

    return entry_config(cfg, entry, **overrides)


def paper_protocol(protocol: str) -> Produce:
    """``--variants paper`` of ``protocol`` (MDVAD Tables 5–9, A5) on the MDVAD sources (and UBnormal)."""
    def produce(cfg: Config, v: CorpusView) -> dict[str, Any]:
        from omnivad.paper.variants import run_paper

        domains = v.tested() if protocol == "ubnormal-open" else v.others()
        out = run_paper(_cfg(cfg, **{"protocol.name": protocol, "corpus.domains": domains}))
        return {"markdown": out["table"], "uri": out["results_uri"]}
    return produce


def single_matrix(entry: str, domains: Callable[[CorpusView], list[str]]) -> Produce:
    """The single-domain cross matrix (MDVAD Table 4 with ``mil+noac``; CoMo Table 4 with ``como``)."""
    def produce(cfg: Config, v: CorpusView) -> dict[str, Any]:
        from omnivad.protocols.runner import run_protocol

        out = run_protocol(_cfg(cfg, entry=entry, **{"protocol.name": "single", "corpus.domains": domains(v)}))
        return {"markdown": out["table"], "uri": out["results_uri"]}
    return produce


def table10(methods: tuple[str, ...], protocols: tuple[str, ...]) -> Produce:
    def produce(cfg: Config, v: CorpusView) -> dict[str, Any]:
        from omnivad.paper.variants import run_table10

        out = run_table10(_cfg(cfg, **{"corpus.domains": v.others()}), list(methods), list(protocols))
        return {"markdown": out["table"], "uri": out["results_uri"]}
    return produce


def in_domain(entry: str, datasets: tuple[str, ...]) -> Produce:
    """One in-domain run per dataset (the paper's own rows of its comparison tables): ``single`` on each."""
    def produce(cfg: Config, v: CorpusView) -> dict[str, Any]:
        from omnivad.report.paper_tables import in_domain_table
        from omnivad.protocols.runner import run_protocol

        doms = [v.find(d) for d in datasets if v.find(d)]
        out = run_protocol(_cfg(cfg, entry=entry, **{"protocol.name": "single", "corpus.domains": doms}))
        return {"markdown": in_domain_table(out, doms).markdown(), "uri": out["results_uri"]}
    return produce


def uvad_table(cfg: Config, v: CorpusView) -> dict[str, Any]:
    """wOCC-WS Table 1 rows: the interleaved run on every tested domain (stopping point, wOCC and WS AUC)."""
    from omnivad.report.paper_tables import uvad_table1
    from omnivad.uvad.runner import run_uvad

    out = run_uvad(_cfg(cfg, **{"corpus.domains": v.tested()}))
    return {"markdown": uvad_table1(out).markdown() + "\n" + out["table"], "uri": out["run"]}


def discrepancy_table3(cfg: Config, v: CorpusView) -> dict[str, Any]:
    """MDVAD Table 3: ``omnivad analyze discrepancy`` on the MDVAD sources' training splits."""
    from omnivad.analysis.discrepancy import discrepancy
    from omnivad.report.tables import discrepancy_table

    return {"markdown": discrepancy_table(discrepancy(str(cfg.corpus.uri), "train", v.others())), "uri": None}


def conflicts_a2(cfg: Config, v: CorpusView) -> dict[str, Any]:
    """MDVAD Table A2 (Eq. 8): ``omnivad analyze conflicts`` on the single-domain matrix of Table 4 (the same
    run: a finished run is reused, not retrained)."""
    from omnivad.analysis.conflicts import conflicts
    from omnivad.report.tables import conflict_table

    single = single_matrix("mil+noac", CorpusView.others)(cfg, v)
    run_dir = str(single["uri"])  # the protocol run's folder (results.json, scores/)
    return {"markdown": conflict_table(conflicts(run_dir)), "uri": run_dir}


# ---------------------------------------------------------------------------------------------- the data table

MDVAD_SOURCES = "≥2 domains with train and test splits (besides UBnormal)"
TABLES: list[TableEntry] = [
    TableEntry("mdvad", "Table 4", MDVAD_SOURCES, needs_domains(2), single_matrix("mil+noac", CorpusView.others)),
    TableEntry("mdvad", "Table 5", MDVAD_SOURCES, needs_domains(2), paper_protocol("E1")),
    TableEntry("mdvad", "Table 6", MDVAD_SOURCES, needs_domains(2), paper_protocol("E2")),
    TableEntry("mdvad", "Table 7", MDVAD_SOURCES, needs_domains(2), paper_protocol("E3")),
    TableEntry("mdvad", "Table 8", MDVAD_SOURCES, needs_domains(2), paper_protocol("E4")),
    TableEntry("mdvad", "Tables 9, A5", "a UBnormal domain (ubnormal.domain) with train and test splits, and another "
               "domain", needs_ubnormal, paper_protocol("ubnormal-open")),
    TableEntry("mdvad", "Table 10", MDVAD_SOURCES, needs_domains(2),
               table10(("mmil", "como", "nullang-mil+ac"), ("E1", "E2", "E3", "E4"))),
    TableEntry("mdvad", "Table 3", MDVAD_SOURCES + " (omnivad analyze discrepancy)", needs_domains(2),
               discrepancy_table3),
    TableEntry("mdvad", "Table A2", MDVAD_SOURCES + " (omnivad analyze conflicts on Table 4's run)", needs_domains(2),
               conflicts_a2),
    TableEntry("bn-wvad", "Tables 1, 2, 6", "UCF, XD or ST domains with train and test splits",
               lambda v: None if any(v.find(d) for d in ("UCF", "XD", "ST")) else needs_dataset("UCF", "XD", "ST")(v),
               in_domain("bn-wvad", ("UCF", "XD", "ST"))),
    TableEntry("bn-wvad", "Tables 3-5, 7-9", "ablation grids", not_automated("ablations: run with --set overrides"),
               lambda c, v: {}),
    TableEntry("como", "Table 1", "UCF, XD, ST or AV domains with train and test splits",
               lambda v: None if any(v.find(d) for d in ("UCF", "XD", "ST", "AV")) else "needs UCF, XD, ST or AV",
               in_domain("como", ("UCF", "XD", "ST", "AV"))),
    TableEntry("como", "Table 4", "UCF, XD and ST domains with train and test splits", needs_dataset("UCF", "XD", "ST"),
               single_matrix("como", lambda v: [d for d in (v.find("UCF"), v.find("XD"), v.find("ST")) if d])),
    TableEntry("uvad", "Table 1", "a domain with train and test splits", needs_any_tested, uvad_table),
    TableEntry("uvad", "Table 4", "ablation grid", not_automated("ablation: run omnivad uvad with --set overrides"),
               lambda c, v: {}),
]


def register_table(entry: TableEntry) -> TableEntry:
    """Add a table to :data:`TABLES` (an analysis package's one line)."""
    if entry.paper not in PAPERS:
        raise ConfigError(f"reproduce table {entry.name!r}: paper {entry.paper!r}, expected one of {', '.join(PAPERS)}")
    TABLES.append(entry)
    return entry


# ---------------------------------------------------------------------------------------------- plan and run

def plan(paper: str, view: CorpusView) -> list[PlanRow]:
    """The tables of ``paper`` in order, each with the reason it is skipped (None: it runs)."""
    if paper not in PAPERS:
        raise ConfigError(f"--paper {paper!r}: expected one of {', '.join(PAPERS)}")
    return [PlanRow(e, e.check(view)) for e in TABLES if e.paper == paper]


def plan_text(paper: str, view: CorpusView, rows: list[PlanRow]) -> str:
    lines = [f"reproduce {paper} on {view.uri} (domains {', '.join(view.domains) or 'none'}):"]
    for r in rows:
        lines.append(f"  {'run ' if r.reason is None else 'skip'}  {r.entry.name:<16} needs {r.entry.needs}"
                     + ("" if r.reason is None else f" -- skipped: {r.reason}"))
    return "\n".join(lines)


def reproduce(cfg: Config, paper: str, view: CorpusView, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every supported table of ``paper``; write ``report.md``, ``report/index.html`` and ``reproduce.json``
    under ``<storage.out>/reproduce-<paper>-<time>/``; return the payload (with ``report_dir``)."""
    rows = plan(paper, view)
    echo(plan_text(paper, view, rows))
    for r in rows:
        if r.reason is None:
            echo(f"reproduce {paper}: {r.entry.name}")
            r.result = r.entry.produce(cfg, view)
    return write_report(cfg.storage.out, paper, view, rows)


def report_markdown(paper: str, view: CorpusView, rows: list[PlanRow]) -> str:
    parts = [f"# Reproducing {paper} on {view.uri}", ""]
    for r in rows:
        parts += [f"## {r.entry.name}", ""]
        if r.reason is not None:
            parts += [f"Skipped: {r.reason}.", ""]
            continue
        parts += [r.result.get("markdown", "").strip(), ""]
        if r.result.get("uri"):
            parts += [f"Run: {r.result['uri']}", ""]
    return "\n".join(parts)


def write_report(out: str, paper: str, view: CorpusView, rows: list[PlanRow]) -> dict[str, Any]:
    from omnivad.report.html import markdown_tables, write_page

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = storage.join(out, f"reproduce-{paper}-{stamp}")
    fs, root = storage.filesystem(out_dir)
    md = report_markdown(paper, view, rows)
    payload = {"paper": paper, "corpus": view.uri, "tables": [
        {"name": r.entry.name, "needs": r.entry.needs, "skipped": r.reason, "uri": r.result.get("uri")} for r in rows]}
    storage.write_bytes_atomic(fs, storage.join(root, "report.md"), md.encode())
    storage.write_bytes_atomic(fs, storage.join(root, "results.md"), md.encode())
    storage.write_json_atomic(fs, storage.join(root, "reproduce.json"), payload)
    if "://" not in out_dir:  # the HTML page is local (s3: report.md only)
        write_page(Path(root) / "report", f"omnivad reproduce {paper}", [markdown_tables(md)])
    return payload | {"report_dir": out_dir}
