"""Run identity (what a trained model is keyed by) and finished / corrupt model files. No Ray is started."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import torch

from omnivad import config
from omnivad.config import IDENTITY_EXCLUDED, Config, dump
from omnivad.corpus.benchmark import build_benchmark
from omnivad.engine import checkpoint as ckpt
from omnivad.engine.spec import RunSpec
from omnivad.engine.trainer import finished_model, fit_run
from omnivad.errors import CheckpointError
from omnivad.protocols.runner import config_hash

BASE = config.load()
FP = "fingerprint"


def _with(path: str, value: Any) -> Config:
    data = dump(BASE)
    section, field = path.split(".")
    data[section][field] = value
    return Config.model_validate(data)


def _candidates(annotation: Any, value: Any) -> list[Any]:
    """Values to try for a changed field, by type (the first the schema accepts is used)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return [a for a in args if a != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [v for v in (value * 0.5, value + 0.1, 0.5) if v != value]
    if isinstance(value, str):
        return [value + "-changed"]
    if value is None:
        inner = [a for a in args if a is not type(None)]
        lits = [x for a in inner if typing.get_origin(a) is typing.Literal for x in typing.get_args(a)]
        return lits or [5, 0.25, ["x"]]
    return []  # lists, dicts, tuples: covered by the named cases below


def _changed_fields() -> dict[str, Config]:
    """One changed config per scalar field of every section (every field the schema lets us change)."""
    out = {}
    for section, info in Config.model_fields.items():
        sub = info.annotation
        for name, finfo in sub.model_fields.items():
            value = getattr(getattr(BASE, section), name)
            for cand in _candidates(finfo.annotation, value):
                try:
                    out[f"{section}.{name}"] = _with(f"{section}.{name}", cand)
                    break
                except Exception:  # noqa: BLE001 - out of the field's range: try the next candidate
                    continue
    return out


def _excluded(path: str) -> bool:
    return path in IDENTITY_EXCLUDED or path.split(".")[0] in IDENTITY_EXCLUDED


CHANGED = _changed_fields()


def test_every_exclusion_names_a_real_field_or_section() -> None:
    for path in IDENTITY_EXCLUDED:
        section, _, name = path.partition(".")
        assert section in Config.model_fields, path
        if name:
            assert name in Config.model_fields[section].annotation.model_fields, path


def test_one_changed_field_of_every_section_changes_the_key() -> None:
    base = config_hash(BASE, FP)
    sections = {p.split(".")[0] for p in CHANGED if not _excluded(p)}
    # every section not excluded as a whole had a field changed (a new section is covered the same way)
    assert sections == {s for s in Config.model_fields if s not in IDENTITY_EXCLUDED}
    same = [p for p, c in CHANGED.items() if not _excluded(p) and config_hash(c, FP) == base]
    assert not same, f"fields outside IDENTITY_EXCLUDED that do not change the key: {same}"


@pytest.mark.parametrize("path,value", [
    ("bn_wvad.rho_sample", 0.5), ("bn_wvad.rho_sample", 0.1), ("train.eval_every", 7), ("benchmark.val_fraction", 0.2),
    ("benchmark.merge", {"A": ["B"]}), ("como.alpha_domains", {"UCF": 0.5}), ("mmil.hidden", (256, 16)),
    ("mdvad.ac_band", (0.3, 0.8)), ("metrics.align", "gt"), ("corpus.domains", ["a"]), ("scaling.workers", 2),
])
def test_named_fields_change_the_key(path: str, value: Any) -> None:
    assert config_hash(_with(path, value), FP) != config_hash(BASE, FP)


@pytest.mark.parametrize("path,value", [
    ("train.log_every", 7), ("train.checkpoint_every", 7), ("train.max_failures", 0), ("storage.out", "/elsewhere"),
    ("ray.address", "ray://head:10001"), ("corpus.uri", "s3://bucket/copy"), ("scaling.max_concurrent_runs", 3),
    ("protocol.name", "E4"), ("metrics.domain_metric", {"XD": "ap"}),
])
def test_fields_that_cannot_change_weights_keep_the_key(path: str, value: Any) -> None:
    assert config_hash(_with(path, value), FP) == config_hash(BASE, FP)
    assert all(config_hash(c, FP) == config_hash(BASE, FP) for p, c in CHANGED.items() if _excluded(p))


def test_corpus_fingerprint_and_split_ids_are_in_the_key() -> None:
    rows = [{"video_id": f"{d}{i}", "domain": d, "split": "train", "label": i % 2} for d in "ab" for i in range(12)]
    cfg = config.load(overrides=["benchmark.folds=1"])
    bench = build_benchmark(rows, cfg.benchmark)
    other = bench.model_copy(deep=True)
    moved = other.folds[0].train["a"].pop()
    other.folds[0].val["a"].append(moved)
    assert config_hash(cfg, FP, bench) != config_hash(cfg, FP, other)
    assert config_hash(cfg, FP, bench) == config_hash(cfg, FP, bench.model_copy(deep=True))
    assert config_hash(cfg, FP) != config_hash(cfg, "another corpus")


def _model(uri: str) -> None:
    ckpt.write_model(uri, {"model": {"w": torch.zeros(2)}, "method": "mil", "domains": ["a"], "feature_dim": 4,
                           "selected": "final@4", "config": dump(BASE)})


def test_a_finished_run_is_reused_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config.load(overrides=[f"storage.out={tmp_path}"])
    spec = RunSpec(name="m/fold0/E1", corpus_uri=str(tmp_path / "corpus"), train={"a": []}, head_domains=["a"], steps=4)
    _model(str(tmp_path / "m/fold0/E1/model.pt"))
    uri, reused = fit_run(cfg, spec)
    assert reused and uri == str(tmp_path / "m/fold0/E1/model.pt")
    assert f"reused: {tmp_path / 'm/fold0/E1'}" in capsys.readouterr().err


@pytest.mark.parametrize("content,what", [
    (b"", "cannot read checkpoint (0 bytes)"),
    (b"PK\x03\x04 truncated zip", "cannot read checkpoint (18 bytes)"),
])
def test_an_unreadable_model_is_an_error_naming_the_file(tmp_path: Path, content: bytes, what: str) -> None:
    bad = tmp_path / "run" / "model.pt"
    bad.parent.mkdir()
    bad.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        ckpt.read_model(str(bad))
    assert str(bad) in str(err.value) and what in str(err.value)


def test_an_incomplete_model_is_an_error_naming_the_missing_keys(tmp_path: Path) -> None:
    uri = str(tmp_path / "model.pt")
    ckpt.write_model(uri, {"model": {}})
    with pytest.raises(CheckpointError, match=r"model\.pt: not a complete model file \(missing method, domains"):
        ckpt.read_model(uri, required=ckpt.MODEL_KEYS)


def test_a_pickled_object_is_refused_not_executed(tmp_path: Path) -> None:
    uri = tmp_path / "model.pt"
    torch.save({"model": {}, "obj": Path("/x")}, uri)  # not loadable with weights_only=True
    with pytest.raises(CheckpointError, match=r"model\.pt: cannot read checkpoint .*UnpicklingError"):
        ckpt.read_model(str(uri))


def test_a_corrupt_model_is_moved_aside_and_the_run_is_unfinished(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "run" / "model.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    assert finished_model(str(bad)) is False
    assert not bad.exists() and (tmp_path / "run" / "model.pt.corrupt-0").read_bytes() == b"garbage"
    err = capsys.readouterr().err
    assert "WARNING" in err and str(bad) in err and "model.pt.corrupt-0" in err and "treating the run as unfinished" in err
    bad.write_bytes(b"again")
    assert finished_model(str(bad)) is False and (tmp_path / "run" / "model.pt.corrupt-1").read_bytes() == b"again"
    _model(str(bad))
    assert finished_model(str(bad)) is True and bad.exists()
