"""The one interface every protocol implements, and the registry of protocols by name.

A protocol (``protocol.name``) says three things:

* :meth:`Protocol.splits`: the train/val/test/fine-tune ids of one of its runs (what
  :func:`omnivad.protocols.protocol_splits` returns for it);
* :meth:`Protocol.plan`: the jobs it trains over ``protocol.folds`` folds (one :class:`Job` each);
* :meth:`Protocol.aggregate`: the ``results.json`` of those jobs (per E4 start, see :meth:`Protocol.starts`).

A search objective (``tune.objective``) is a protocol too: :meth:`Protocol.search_runs` plans a trial's
runs, scored on validation only. Adding a protocol is one module with a :func:`register`-ed subclass,
imported by ``omnivad/protocols/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from omnivad.errors import ConfigError

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.corpus.benchmark import Benchmark, Fold, ProtocolSplit
    from omnivad.corpus.format import Corpus
    from omnivad.protocols.common import Job, Planner


class Protocol(ABC):
    """One protocol: its split selection, its jobs and its aggregation."""

    name: ClassVar[str]

    # -- split selection

    def splits(self, bench: Benchmark, fold: int = 0, target: str | None = None, start: str = "E1") -> ProtocolSplit:
        """Train/val/test/fine-tune ids of one run of this protocol on ``fold`` (``target``: its domain)."""
        fd = bench.fold(fold)
        if target is not None and target not in bench.domains:
            raise ValueError(f"target {target!r} is not a benchmark domain ({', '.join(bench.domains)})")
        return self.select(bench, fd, target, start)

    @abstractmethod
    def select(self, bench: Benchmark, fd: Fold, target: str | None, start: str) -> ProtocolSplit:
        """:meth:`splits` once the fold exists and ``target`` (if given) is a benchmark domain."""

    # -- planning

    def benchmark(self, cfg: Config, corpus: Corpus, domains: list[str]) -> Benchmark:
        """The benchmark this protocol's runs use (the MDVAD benchmark of ``domains`` by default; a protocol that
        re-splits a domain, e.g. ``ubnormal-open``, overrides it)."""
        from omnivad.corpus.benchmark import build_benchmark

        return build_benchmark(corpus, cfg.benchmark, domains)

    def plan(self, cfg: Config, corpus: Corpus, bench: Benchmark, domains: list[str]) -> list[Job]:
        """The jobs of this protocol over ``protocol.folds`` folds, fold by fold."""
        from omnivad.protocols.common import Planner

        planner = Planner.of(cfg, corpus, bench, domains)
        return [job for fold in range(cfg.protocol.folds) for job in self.plan_fold(planner, fold)]

    @abstractmethod
    def plan_fold(self, p: Planner, fold: int) -> list[Job]:
        """The jobs of one fold."""

    def search_runs(self, cfg: Config, bench: Benchmark, corpus_uri: str, domains: list[str], fold: int,
                    targets: list[str]) -> list[dict[str, Any]]:
        """The runs of one search trial with this protocol as objective: ``[{objective, key, spec, tested}]``
        (``spec`` a dumped RunSpec, validated on validation videos only; ``tested``: the domains its model is
        tested on once after the search). ``targets``: the held-out targets (``tune.targets``, else
        ``protocol.targets``, else every domain) where the protocol has targets."""
        raise ConfigError(f"tune.objective: protocol {self.name} cannot be a search objective")

    # -- aggregation

    def starts(self, cfg: Config) -> list[str | None]:
        """One ``results.json`` entry per start (``None``: the protocol has one result)."""
        return [None]

    def result_domains(self, cfg: Config, domains: list[str]) -> list[str]:
        """The domains the results report (the targets by default)."""
        return list(cfg.protocol.targets or domains)

    def counts(self, job: Job, domain: str) -> bool:
        """Whether ``job``'s metrics on ``domain`` count towards the domain's result."""
        return True

    def aggregate(self, cfg: Config, jobs: list[Job], domains: list[str], start: str | None = None,
                  corpus: Corpus | None = None) -> dict[str, Any]:
        """Per-domain mean ± sample std over folds, in the ``results.json`` shape (see
        :func:`omnivad.protocols.common.aggregate_jobs`)."""
        from omnivad.protocols.common import aggregate_jobs

        return aggregate_jobs(self, cfg, jobs, domains, start, corpus)

    def table(self, results: list[dict[str, Any]]) -> str:
        """``results.md``: one protocol table per result."""
        from omnivad.report.tables import protocol_table

        return "".join(protocol_table([r]) for r in results)


_PROTOCOLS: dict[str, Protocol] = {}


def register(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: register one instance of a protocol under its ``name``."""
    if cls.name in _PROTOCOLS:
        raise ValueError(f"protocol {cls.name!r} is registered twice")
    _PROTOCOLS[cls.name] = cls()
    return cls


def list_protocols() -> list[str]:
    """The registered protocol names, in registration order (importing this module runs the package's
    ``__init__``, which registers the built-in protocols)."""
    return list(_PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The protocol named ``name`` (case-insensitive: ``e2`` is ``E2``)."""
    names = list_protocols()
    text = str(name).strip()
    for n in names:
        if n.lower() == text.lower():
            return _PROTOCOLS[n]
    raise ValueError(f"unknown protocol {name!r} (expected one of {', '.join(names)})")
