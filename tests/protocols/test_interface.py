"""Every protocol behind one interface: the registry, what each protocol implements, the names the config
accepts, and that a new protocol is one registered class (no Ray)."""

from __future__ import annotations

import ast
import inspect
import pathlib
import typing

import pytest

from omnivad import config
from omnivad.config import ProtocolConfig
from omnivad.corpus import benchmark
from omnivad.corpus.benchmark import ProtocolSplit, build_benchmark
from omnivad.errors import ConfigError
from omnivad.protocols import Protocol, get_protocol, list_protocols, register
from omnivad.protocols import base
from omnivad.protocols.common import Job, Planner, pick
from omnivad.protocols import protocol_splits


def _rows(domain: str, split: str, normal: int, abnormal: int) -> list[dict]:
    return ([dict(video_id=f"{domain}_{split}_N{i}", domain=domain, split=split, label=0) for i in range(normal)]
            + [dict(video_id=f"{domain}_{split}_A{i}", domain=domain, split=split, label=1) for i in range(abnormal)])


@pytest.fixture(scope="module")
def bench():
    rows = [r for d in ("A", "B", "C") for r in _rows(d, "train", 12, 8) + _rows(d, "test", 3, 3)]
    return build_benchmark(rows, config.BenchmarkConfig(folds=2, volume_normal=8, volume_abnormal=6))


def test_every_registered_protocol_implements_the_interface():
    names = list_protocols()
    assert names
    for name in names:
        p = get_protocol(name)
        assert isinstance(p, Protocol) and p.name == name
        assert not inspect.isabstract(type(p)), f"{name}: abstract methods {type(p).__abstractmethods__}"
        for method in ("splits", "select", "plan", "plan_fold", "aggregate", "starts", "result_domains", "counts",
                       "table", "search_runs"):
            assert callable(getattr(p, method)), (name, method)


def test_the_config_accepts_exactly_the_registered_protocols():
    accepted = typing.get_args(ProtocolConfig.model_fields["name"].annotation)
    assert sorted(accepted) == sorted(list_protocols())


def test_names_are_case_insensitive_and_unknown_ones_are_named():
    assert get_protocol("e2") is get_protocol("E2") and get_protocol(" Single ").name == "single"
    with pytest.raises(ValueError, match="'E9'.*expected one of single, E1, E2, E3, E4"):
        get_protocol("E9")


def test_every_protocol_splits_and_plans(bench, tmp_path):
    class FakeCorpus:
        uri = str(tmp_path)

    for name in list_protocols():
        p = get_protocol(name)
        extra = ["ubnormal.domain=C"] if name == "ubnormal-open" else []  # it needs a UBnormal domain
        cfg = config.load(overrides=[f"protocol.name={name}", "protocol.folds=2", "benchmark.folds=2", *extra])
        sp = protocol_splits(bench, name, 1, "B")
        assert isinstance(sp, ProtocolSplit) and sp.protocol == name and sp == p.splits(bench, 1, "B")
        jobs = p.plan(cfg, FakeCorpus, bench, list(bench.domains))
        assert jobs and all(isinstance(j, Job) and j.stages for j in jobs)
        assert {j.key[0] for j in jobs} == {"0", "1"}
        assert p.starts(cfg) and set(p.result_domains(cfg, list(bench.domains))) <= set(bench.domains)


def test_only_e1_and_e2_are_search_objectives(bench):
    cfg = config.load(overrides=["benchmark.folds=2"])
    domains = list(bench.domains)
    assert [r["key"] for r in get_protocol("E1").search_runs(cfg, bench, "/c", domains, 0, domains)] == ["E1"]
    assert [r["key"] for r in get_protocol("E2").search_runs(cfg, bench, "/c", domains, 0, domains)] == domains
    for name in ("single", "E3", "E4", "ubnormal-open"):
        with pytest.raises(ConfigError, match=f"protocol {name} cannot be a search objective"):
            get_protocol(name).search_runs(cfg, bench, "/c", domains, 0, domains)


def test_a_new_protocol_is_one_registered_class(bench, tmp_path):
    """A protocol registered from outside the package serves protocol_splits and plans jobs."""

    class FirstOnly(Protocol):
        name = "first-only"

        def select(self, bench, fd, target, start):
            first = bench.domains[:1]
            return ProtocolSplit(protocol=self.name, fold=fd.index, source_domains=first, train=pick(fd.train, first),
                                 val=pick(fd.val, first), test=pick(fd.test, bench.test_domains()))

        def plan_fold(self, p: Planner, fold: int) -> list[Job]:
            sp = self.splits(p.bench, fold)
            return [Job((str(fold),), [p.spec("first", fold, sp.train, sp.val, sp.source_domains)], p.domains)]

    class FakeCorpus:
        uri = str(tmp_path)

    register(FirstOnly)
    try:
        assert "first-only" in list_protocols()
        assert protocol_splits(bench, "FIRST-ONLY", 1).source_domains == ["A"]
        cfg = config.load(overrides=["protocol.folds=2", "benchmark.folds=2"])
        jobs = get_protocol("first-only").plan(cfg, FakeCorpus, bench, list(bench.domains))
        assert [j.stages[0].name.rsplit("/", 2)[-2:] for j in jobs] == [["fold0", "first"], ["fold1", "first"]]
        with pytest.raises(ValueError, match="registered twice"):
            register(FirstOnly)
    finally:
        base._PROTOCOLS.pop("first-only", None)


def test_method_knowledge_is_in_method_glue_only():
    """Only protocols/method_glue.py imports omnivad.methods or reads the method's config sections."""
    root = pathlib.Path(base.__file__).parent
    for path in sorted(root.glob("*.py")):
        if path.name == "method_glue.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("omnivad.methods"), (path.name, node.module)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                assert not (node.value.attr == "loss" and node.attr == "ac"), path.name
