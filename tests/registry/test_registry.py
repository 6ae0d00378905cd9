"""The model registry without Ray: the promotion gate, storage round-trip, change detection, errors."""

from __future__ import annotations

import json
import os

import pytest

from omnivad.corpus.format import Corpus, CorpusWriter, write_videos
from omnivad.corpus.synth import SynthConfig, generate
from omnivad.registry import (
    DataSnapshot,
    DomainData,
    DomainMetrics,
    ModelVersion,
    Registry,
    RegistryError,
    detect_change,
    load_registry,
    promotion_gate,
    registry_uri,
    save_registry,
    snapshot_of,
    stale_baselines,
)
from omnivad.registry.registry import read_registry_bytes


def m(auc: float, ap: float = 0.5) -> DomainMetrics:
    return DomainMetrics(auc=auc, ap=ap)


def snap(fingerprint: str = "f1", domains: tuple[str, ...] = ("a", "b"), test_hash: str = "t") -> DataSnapshot:
    return DataSnapshot(corpus_uri="/c", fingerprint=fingerprint,
                        domains={d: DomainData(videos={"train": 10, "test": 4}, test_hash=test_hash) for d in domains})


def version(v: str = "v1", status: str = "promoted", domains: tuple[str, ...] = ("a", "b"), fingerprint: str = "f1",
            parent: str | None = None, reason: str = "") -> ModelVersion:
    return ModelVersion(version=v, model_uri=f"/runs/{v}/model.pt", method="null-mil", domains=list(domains),
                        snapshot=snap(fingerprint, domains), val_metrics={d: m(0.8) for d in domains},
                        test_metrics={d: m(0.9) for d in domains}, parent=parent,
                        created="2025-01-01T00:00:00+00:00", status=status, reason=reason)


# ------------------------------------------------------------------------------------------ the gate


def test_gate_promotes_drops_within_tolerance():
    d = promotion_gate({"a": m(0.90), "b": m(0.80)}, {"a": m(0.891), "b": m(0.85), "c": m(0.2)}, tolerance=1.0)
    assert d.promote and d.drops["a"] == pytest.approx(0.9) and "c" not in d.drops
    assert promotion_gate({"a": m(0.90)}, {"a": m(0.89)}, tolerance=1.0).promote  # exactly 1 point: allowed


def test_gate_rejects_a_drop_beyond_tolerance_naming_the_domain():
    d = promotion_gate({"a": m(0.90), "b": m(0.80)}, {"a": m(0.90), "b": m(0.77), "c": m(0.99)}, tolerance=1.0)
    assert not d.promote
    assert "b" in d.reason and "3.00 points" in d.reason and "a AUC" not in d.reason
    assert d.drops["b"] == pytest.approx(3.0)
    # a looser tolerance lets the same candidate through
    assert promotion_gate({"b": m(0.80)}, {"b": m(0.77)}, tolerance=5.0).promote


def test_gate_new_domains_do_not_count_and_missing_domains_reject():
    assert promotion_gate({}, {"a": m(0.1)}).promote  # first version: nothing to compare with
    assert promotion_gate({"a": m(0.9)}, {"a": m(0.9), "new": m(0.01)}).promote
    d = promotion_gate({"a": m(0.9), "b": m(0.9)}, {"a": m(0.9)})
    assert not d.promote and "b" in d.reason
    with pytest.raises(ValueError, match="tolerance"):
        promotion_gate({}, {}, tolerance=-1)


# ------------------------------------------------------------------------------------------ storage


def test_registry_round_trip(tmp_path):
    uri = registry_uri(str(tmp_path / "out"))
    assert uri.endswith("registry/registry.json")
    assert load_registry(uri) == Registry()  # no file yet: empty
    reg = Registry().record(version("v1"))
    reg = reg.record(version("v2", status="rejected", domains=("a", "b", "c"), fingerprint="f2", parent="v1", reason="rejected: b"))
    assert reg.current == "v1" and reg.next_version() == "v3"
    save_registry(uri, reg)
    back = load_registry(uri)
    assert back == reg and back.get("v2").parent == "v1" and back.current_version.version == "v1"
    assert json.loads(open(uri).read())["format"] == "omnivad-registry"
    with pytest.raises(RegistryError, match="already recorded"):
        reg.record(version("v2"))


def test_save_is_atomic_and_refuses_a_concurrent_change(tmp_path, monkeypatch):
    uri = registry_uri(str(tmp_path))
    save_registry(uri, Registry().record(version("v1")))
    good = read_registry_bytes(uri)

    # a write that fails before the rename leaves the old file whole
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Exception, match="disk full"):
        save_registry(uri, Registry().record(version("v1")).record(version("v2")))
    monkeypatch.undo()
    assert read_registry_bytes(uri) == good
    # optimistic check: the file changed since it was read -> nothing written
    with pytest.raises(RegistryError, match="changed by another process"):
        save_registry(uri, Registry().record(version("v9")), expect=b"")
    assert read_registry_bytes(uri) == good
    assert load_registry(uri).current == "v1"


def test_corrupt_registry_errors_name_the_file_and_field(tmp_path):
    uri = registry_uri(str(tmp_path))
    os.makedirs(os.path.dirname(uri))
    open(uri, "w").write("{not json")
    with pytest.raises(RegistryError, match="registry.json.*not valid JSON"):
        load_registry(uri)
    good = Registry().record(version("v1")).model_dump(mode="json")
    bad = json.loads(json.dumps(good))
    bad["versions"][0]["val_metrics"]["a"]["auc"] = 1.7
    open(uri, "w").write(json.dumps(bad))
    with pytest.raises(RegistryError, match=r"registry.json.*versions\.0\.val_metrics\.a\.auc"):
        load_registry(uri)
    bad = json.loads(json.dumps(good))
    bad["current"] = "v7"
    open(uri, "w").write(json.dumps(bad))
    with pytest.raises(RegistryError, match="current.*v7"):
        load_registry(uri)
    open(uri, "w").write(json.dumps({"format": "something-else"}))
    with pytest.raises(RegistryError, match="registry.json.*format"):
        load_registry(uri)


# ------------------------------------------------------------------------------------------ what changed


def test_detect_change():
    assert detect_change(Registry(), snap()).kind == "initial"
    reg = Registry().record(version("v1"))
    nothing = detect_change(reg, snap())
    assert nothing.kind == "nothing" and "v1" in nothing.reason
    new = detect_change(reg, snap(domains=("a", "b", "c"), fingerprint="f2"))
    assert new.kind == "new-domains" and new.new_domains == ["c"]
    assert detect_change(reg, snap(fingerprint="f2")).kind == "new-data"
    # a rejected candidate for exactly this data is not retrained again
    rejected = reg.record(version("v2", status="rejected", domains=("a", "b", "c"), fingerprint="f2", parent="v1", reason="rejected: a"))
    again = detect_change(rejected, snap(domains=("a", "b", "c"), fingerprint="f2"))
    assert again.kind == "nothing" and "v2" in again.reason and "rejected: a" in again.reason
    # ...but newer data is
    assert detect_change(rejected, snap(domains=("a", "b", "c"), fingerprint="f3")).kind == "new-domains"
    with pytest.raises(RegistryError, match="b"):
        detect_change(reg, snap(domains=("a",), fingerprint="f2"))


def test_snapshot_of_a_corpus_and_stale_baselines(tmp_path):
    videos = generate(SynthConfig(domains=3, videos_per_domain=4, test_videos_per_domain=2, dim=4, seed=0))
    names = list(dict.fromkeys(v.domain for v in videos))
    uri = str(tmp_path / "c")
    write_videos(uri, [v for v in videos if v.domain in names[:2]], feature_dim=4)
    s1 = snapshot_of(Corpus.open(uri), names[:2])
    assert s1.domains[names[0]].videos == {"test": 2, "train": 4} and s1.domains[names[0]].test_hash
    with CorpusWriter(uri, feature_dim=4) as w:
        for v in videos:
            if v.domain == names[2]:
                w.add(v)
    c2 = Corpus.open(uri)
    s2 = snapshot_of(c2, c2.domains)
    assert s2.fingerprint != s1.fingerprint and list(s2.domains) == names
    assert s2.domains[names[0]] == s1.domains[names[0]]  # old domains untouched
    v1 = ModelVersion(version="v1", model_uri="/m.pt", method="null-mil", domains=names[:2], snapshot=s1,
                      test_metrics={d: m(0.9) for d in names[:2]}, created="t", status="promoted")
    assert detect_change(Registry().record(v1), s2).new_domains == [names[2]]
    assert stale_baselines(v1, s2) == []  # recorded metrics are still a fair baseline
    s3 = s2.model_copy(deep=True)
    s3.domains[names[1]].test_hash = "other"
    assert stale_baselines(v1, s3) == [names[1]]


def test_a_registry_written_before_validation_gating_reads_its_metrics_as_test():
    data = version("v1").model_dump(mode="json")
    data.pop("val_metrics")
    data["metrics"] = data.pop("test_metrics")
    old = ModelVersion.model_validate(data)
    assert old.test_metrics == {"a": m(0.9), "b": m(0.9)} and old.val_metrics == {}


# --------------------------------------------------------------------------------------------------
# --every: the duration parser and the loop (fake retrain, fake clock and sleep; no Ray)

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from omnivad.registry.retrain import (  # noqa: E402
    RetrainOutcome,
    _sigterm_as_interrupt,
    add_retrain_args,
    parse_duration,
    retrain_main,
    run_every,
)


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30), ("10m", 600), ("6h", 21600), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400), ("45", 45),
    (" 2M ", 120), ("0.5s", 0.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5x", "", "m", "0s", "0", "-1m", "1h 30m", "10 minutes", "inf", "nan", "s10"])
def test_parse_duration_errors_name_the_flag_and_value(bad):
    with pytest.raises(ValueError) as exc:
        parse_duration(bad, "--every")
    assert str(exc.value).startswith("--every: ") and repr(bad) in str(exc.value)


class FakeTime:
    """A monotonic clock that only sleep() (and the fake retrain) advance."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fake_retrain(t: FakeTime, durations: list[float], actions: list[str | Exception]):
    starts: list[float] = []

    def run() -> RetrainOutcome:
        i = len(starts)
        starts.append(t.now)
        t.now += durations[i % len(durations)]
        a = actions[i % len(actions)]
        if isinstance(a, Exception):
            raise a
        return RetrainOutcome(a, f"run {i}: {a}")

    return run, starts


def test_run_every_ticks_from_the_start_of_the_previous_run():
    t, said = FakeTime(), []
    run, starts = fake_retrain(t, [100.0, 30.0, 900.0, 10.0], ["promoted", "nothing-new"])
    rc = run_every(run, 600.0, max_runs=4, sleep=t.sleep, clock=t.clock, say=said.append)
    assert rc == 0
    # every run starts 600s after the previous one started, except after the 900s run (overran: at once)
    assert [s - starts[0] for s in starts] == [0.0, 600.0, 1200.0, 2100.0]
    assert t.sleeps == [500.0, 570.0]  # no sleep after the overrun, none after the last run
    text = "\n".join(said)
    assert "run 1: promoted" in text and "run 2: nothing-new" in text and "next run in 500s" in text
    assert "took longer than --every 10m" in text and "stopping after 4 run(s)" in text


def test_run_every_survives_a_failed_run_and_reports_it():
    t, said = FakeTime(), []
    run, starts = fake_retrain(t, [5.0], [ValueError("corpus.domains: 'x' is not in /c"), "promoted"])
    assert run_every(run, 60.0, max_runs=2, sleep=t.sleep, clock=t.clock, say=said.append) == 0
    assert len(starts) == 2 and any("run 1 failed: corpus.domains" in s for s in said)
    run, _ = fake_retrain(t, [5.0], [RegistryError("registry changed by another process")])
    assert run_every(run, 60.0, max_runs=1, sleep=t.sleep, clock=t.clock, say=said.append) == 1


def test_run_every_stops_cleanly_on_interrupt():
    t, said = FakeTime(), []

    def interrupted_sleep(seconds: float) -> None:
        t.sleep(seconds)
        if len(t.sleeps) == 2:
            raise KeyboardInterrupt  # what Ctrl-C, or SIGTERM under _sigterm_as_interrupt, raises

    run, starts = fake_retrain(t, [1.0], ["nothing-new"])
    assert run_every(run, 30.0, sleep=interrupted_sleep, clock=t.clock, say=said.append) == 0
    assert len(starts) == 2 and "interrupted; stopping after 2 run(s)" in said[-1]


def test_sigterm_raises_keyboard_interrupt_while_active():
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with _sigterm_as_interrupt():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_retrain_args(p)
    return p.parse_args(list(argv))


def test_retrain_main_loops_with_every(monkeypatch, tmp_path):
    rt = sys.modules["omnivad.registry.retrain"]  # (the package exports the function under the same name)
    calls, sleeps = [], []
    monkeypatch.setattr(rt, "retrain", lambda cfg, tolerance: calls.append((cfg.corpus.uri, tolerance))
                        or RetrainOutcome("nothing-new", "nothing new"))
    monkeypatch.setattr(rt, "_sleep", sleeps.append)
    args = _args("--corpus", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--every", "10m", "--max-runs", "3",
                 "--tolerance", "0.5")
    assert retrain_main(args) == 0
    assert calls == [(str(tmp_path / "c"), 0.5)] * 3 and len(sleeps) == 2 and all(0 < s <= 600 for s in sleeps)


@pytest.mark.parametrize("argv,message", [
    (["--every", "5x"], "--every: expected a duration such as 30s, 10m, 6h or 1d, got '5x'"),
    (["--every", "0m"], "--every: "),
    (["--max-runs", "2"], "--max-runs: only used with --every"),
    (["--every", "1h", "--max-runs", "0"], "--max-runs: expected >= 1, got 0"),
])
def test_retrain_main_rejects_bad_loop_flags(argv, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        retrain_main(_args(*argv))


def test_job_reports_a_bad_every_value():
    job = Path(__file__).resolve().parents[2] / "jobs" / "retrain.py"
    r = subprocess.run([sys.executable, str(job), "--every", "soon"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "retrain: error: --every: " in r.stderr and "'soon'" in r.stderr


def test_the_gate_reads_validation_never_test(tmp_path, monkeypatch):
    """v2's test AUC collapses but its validation AUC holds: promoted (and the other way round: rejected). The
    test numbers are recorded as test_metrics either way. Training and scoring are stubbed (no Ray)."""
    from omnivad import config
    from omnivad.engine import evaluate
    from omnivad.protocols import runner
    import importlib

    rt = importlib.import_module("omnivad.registry.retrain")

    videos = generate(SynthConfig(domains=2, videos_per_domain=8, test_videos_per_domain=4, dim=4, seed=0))
    corpus_uri = str(tmp_path / "corpus")
    write_videos(corpus_uri, videos, feature_dim=4)
    names = Corpus.open(corpus_uri).domains
    cfg = config.load(overrides=[f"corpus.uri={corpus_uri}", f"storage.out={tmp_path / 'out'}", "benchmark.folds=1"])
    val = {"v1": 0.9, "v2": 0.9, "v3": 0.7}  # validation AUC per version: v3 drops 20 points
    test = {"v1": 0.9, "v2": 0.5, "v3": 0.95}  # test AUC: v2 drops 40 points, v3 improves
    monkeypatch.setattr(runner, "ensure_ray", lambda cfg: None)
    monkeypatch.setattr(rt, "_train", lambda cfg, corpus, domains, heads, version, cur: (f"/m/{version}", {}, {}))
    monkeypatch.setattr(rt, "_write_warm_start", lambda *a, **k: None)
    monkeypatch.setattr(evaluate, "evaluate_validation",
                        lambda uri, *a, **k: {d: {"auc": val[uri.split("/")[-1]], "ap": 0.5} for d in names})
    monkeypatch.setattr(evaluate, "evaluate_model", lambda uri, corpus, domains, **k: {
        "per_domain": {d: {"auc": test[uri.split("/")[-1]], "ap": 0.5} for d in domains}})
    monkeypatch.setattr("omnivad.engine.checkpoint.read_model", lambda uri, **k: {"method": "null-mil"})
    assert rt.retrain(cfg, say=lambda s: None).action == "promoted"
    _add = [v for v in generate(SynthConfig(domains=2, videos_per_domain=8, test_videos_per_domain=4, dim=4, seed=1))]
    for i in (2, 3):
        with CorpusWriter(corpus_uri, feature_dim=4) as w:  # new videos: a new fingerprint, so a retrain
            for v in _add:
                w.add(v.__class__(**{**v.__dict__, "video_id": f"r{i}-{v.video_id}", "domain": names[0] if v.domain == _add[0].domain else names[1]}))
        out = rt.retrain(cfg, say=lambda s: None)
        assert out.action == ("promoted" if i == 2 else "rejected"), out.message
        assert out.version.test_metrics[names[0]].auc == test[f"v{i}"]
        assert out.version.val_metrics[names[0]].auc == val[f"v{i}"]
        assert "test auc (recorded, not gated)" in out.message.lower()
