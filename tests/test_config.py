"""Config schema: MDVAD defaults, YAML/JSON files, --set overrides, precedence, error messages, dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from omnivad import config
from omnivad.config import Config
from omnivad.errors import ConfigError, OmnivadError

# --------------------------------------------------------------------------------------------------
# Defaults


def test_defaults_match_the_mdvad_paper() -> None:
    cfg = config.load()
    assert cfg.mdvad.k == 3
    assert cfg.mdvad.tau == pytest.approx(0.3)
    assert cfg.mdvad.angular_margin == pytest.approx(0.3)
    assert cfg.mdvad.ac_weight == pytest.approx(10.0)
    assert cfg.mdvad.ac is True
    assert cfg.train.lr == pytest.approx(5e-5)
    assert cfg.train.weight_decay == pytest.approx(5e-4)
    assert cfg.data.segments == 32
    assert cfg.model.method == "nullang-mil"
    assert cfg.protocol.name == "E1"
    assert cfg.mdvad.ac_band == (0.4, 0.7)


def test_load_without_anything_equals_the_model_defaults() -> None:
    assert config.dump(config.load(None, [])) == config.dump(Config())


# --------------------------------------------------------------------------------------------------
# Files


def test_yaml_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  steps: 11\n  lr: 1.0e-4\nmdvad:\n  ac: false\nprotocol:\n  targets: [x, y]\n")
    cfg = config.load(p)
    assert cfg.train.steps == 11 and cfg.train.lr == pytest.approx(1e-4)
    assert cfg.mdvad.ac is False
    assert cfg.protocol.targets == ["x", "y"]
    # untouched fields of a touched section keep their defaults
    assert cfg.train.weight_decay == pytest.approx(5e-4) and cfg.mdvad.k == 3


def test_yml_extension_and_string_path(tmp_path: Path) -> None:
    p = tmp_path / "c.yml"
    p.write_text("data: {segments: 16}\n")
    assert config.load(str(p)).data.segments == 16


def test_json_file(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"mdvad": {"k": 5, "ac_band": [0.1, 0.9]}, "scaling": {"workers": 4}}))
    cfg = config.load(p)
    assert cfg.mdvad.k == 5 and cfg.mdvad.ac_band == (0.1, 0.9) and cfg.scaling.workers == 4


def test_empty_yaml_file_gives_defaults(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("# nothing here\n")
    assert config.dump(config.load(p)) == config.dump(Config())


# --------------------------------------------------------------------------------------------------
# --set overrides


def test_set_scalars() -> None:
    cfg = config.load(None, ["train.steps=7", "train.lr=1e-4", "mdvad.tau=0.5", "model.method=mil",
                             "benchmark.category_balance=equal"])
    assert cfg.train.steps == 7
    assert cfg.train.lr == pytest.approx(1e-4)
    assert cfg.mdvad.tau == pytest.approx(0.5)
    assert cfg.model.method == "mil"
    assert cfg.benchmark.category_balance == "equal"


def test_set_lists() -> None:
    cfg = config.load(None, ["protocol.targets=[a, b]", "corpus.domains=[campus,traffic]", "mdvad.ac_band=[0.2, 0.6]"])
    assert cfg.protocol.targets == ["a", "b"]
    assert cfg.corpus.domains == ["campus", "traffic"]
    assert cfg.mdvad.ac_band == (0.2, 0.6)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False), ("True", True), ("no", False)])
def test_set_booleans(text: str, expected: bool) -> None:
    assert config.load(None, [f"scaling.use_gpu={text}"]).scaling.use_gpu is expected
    assert config.load(None, [f"mdvad.ac={text}"]).mdvad.ac is expected


def test_set_null() -> None:
    cfg = config.load(None, ["ray.address=10.0.0.1:6379", "ray.address=null", "protocol.targets=[a]",
                             "protocol.targets=null", "benchmark.volume_normal=~"])
    assert cfg.ray.address is None
    assert cfg.protocol.targets is None
    assert cfg.benchmark.volume_normal is None


def test_set_value_may_contain_equals_and_spaces() -> None:
    cfg = config.load(None, ["storage.out=s3://bucket/a=b", " train.seed = 4"])
    assert cfg.storage.out == "s3://bucket/a=b"
    assert cfg.train.seed == 4


def test_set_a_dict_field() -> None:
    cfg = config.load(None, ["benchmark.merge={TAD: [CADP]}"])
    assert cfg.benchmark.merge == {"TAD": ["CADP"]}


def test_later_set_wins() -> None:
    assert config.load(None, ["train.steps=1", "train.steps=2"]).train.steps == 2


def test_parse_value() -> None:
    assert config.parse_value("3") == 3
    assert config.parse_value("1e-4") == pytest.approx(1e-4)
    assert config.parse_value("[a, b]") == ["a", "b"]
    assert config.parse_value("null") is None
    assert config.parse_value("true") is True
    assert config.parse_value("plain") == "plain"
    assert config.parse_value("[unclosed") == "[unclosed"  # not YAML: kept as a string


# --------------------------------------------------------------------------------------------------
# Precedence: defaults < file < overrides


def test_precedence_defaults_file_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  steps: 50\n  lr: 1.0e-3\nmdvad:\n  k: 4\n")
    cfg = config.load(p, ["train.steps=9"])
    assert cfg.train.steps == 9  # override beats file
    assert cfg.train.lr == pytest.approx(1e-3)  # file beats default
    assert cfg.mdvad.k == 4
    assert cfg.train.weight_decay == pytest.approx(5e-4)  # default where neither says anything
    assert cfg.mdvad.tau == pytest.approx(0.3)


def test_base_is_below_the_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train: {steps: 50}\n")
    cfg = config.load(p, [], base={"train": {"steps": 1, "seed": 3}})
    assert cfg.train.steps == 50 and cfg.train.seed == 3


def test_load_does_not_mutate_base() -> None:
    base = {"train": {"steps": 1}}
    config.load(None, ["train.steps=2", "mdvad.k=4"], base=base)
    assert base == {"train": {"steps": 1}}


# --------------------------------------------------------------------------------------------------
# Errors name the field and what was expected


def _error(path: str | Path | None = None, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        config.load(path, overrides)
    assert isinstance(exc.value, OmnivadError)
    return str(exc.value)


def test_unknown_field() -> None:
    msg = _error(None, ["train.lrr=1e-4"])
    assert "train.lrr" in msg and "unknown field" in msg


def test_unknown_section() -> None:
    msg = _error(None, ["trian.lr=1e-4"])
    assert "trian" in msg and "unknown field" in msg


def test_wrong_type() -> None:
    msg = _error(None, ["train.steps=abc"])
    assert "train.steps" in msg and "integer" in msg and "'abc'" in msg


def test_out_of_range() -> None:
    msg = _error(None, ["mdvad.k=0"])
    assert "mdvad.k" in msg and "greater than or equal to 1" in msg and "got 0" in msg


def test_bad_literal_lists_the_choices() -> None:
    msg = _error(None, ["protocol.name=E9"])
    assert "protocol.name" in msg and "E1" in msg and "E9" in msg


def test_ac_band_order() -> None:
    msg = _error(None, ["mdvad.ac_band=[0.8, 0.2]"])
    assert "mdvad.ac_band" in msg and "low < high" in msg and "0.8" in msg


def test_ac_band_wrong_length() -> None:
    msg = _error(None, ["mdvad.ac_band=[0.1, 0.2, 0.3]"])
    assert "mdvad.ac_band" in msg


def test_several_errors_are_all_named() -> None:
    msg = _error(None, ["train.lrr=1", "mdvad.k=0"])
    assert "train.lrr" in msg and "mdvad.k" in msg


def test_set_without_equals() -> None:
    msg = _error(None, ["foo"])
    assert "foo" in msg and "KEY=VALUE" in msg


def test_set_with_empty_field_name() -> None:
    msg = _error(None, ["train..lr=1"])
    assert "empty field name" in msg and "train..lr" in msg


def test_set_into_a_scalar() -> None:
    msg = _error(None, ["loss=3", "loss.k=2"])
    assert "'loss' is not a section" in msg


def test_section_given_a_scalar() -> None:
    msg = _error(None, ["loss=3"])
    assert "loss" in msg and "dictionary" in msg


def test_missing_config_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.yaml"
    msg = _error(p)
    assert str(p) in msg and "not found" in msg


def test_yaml_top_level_list(tmp_path: Path) -> None:
    p = tmp_path / "list.yaml"
    p.write_text("- train\n- loss\n")
    msg = _error(p)
    assert str(p) in msg and "mapping" in msg


def test_unparsable_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "bad.yaml"
    y.write_text("train: [unclosed\n")
    msg = _error(y)
    assert str(y) in msg and "cannot parse" in msg
    j = tmp_path / "bad.json"
    j.write_text("{\"train\": ")
    msg = _error(j)
    assert str(j) in msg and "cannot parse" in msg


def test_file_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  steps: -1\n")
    msg = _error(p)
    assert str(p) in msg and "train.steps" in msg and "-1" in msg


def test_validate_assignment_is_on() -> None:
    cfg = config.load()
    with pytest.raises(Exception):  # noqa: B017 - pydantic ValidationError
        cfg.train.steps = 0  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------------
# dump / to_yaml round-trip


def _custom() -> Config:
    return config.load(None, ["train.steps=7", "mdvad.ac_band=[0.2, 0.6]", "protocol.targets=[a, b]",
                              "benchmark.merge={TAD: [CADP]}", "scaling.resources_per_worker={x: 1.5}",
                              "ray.num_cpus=2", "mdvad.ac=false", "protocol.name=E3"])


def test_dump_is_plain_json_data() -> None:
    d = config.dump(_custom())
    assert json.loads(json.dumps(d)) == d
    assert d["mdvad"]["ac_band"] == [0.2, 0.6]
    assert d["train"]["steps"] == 7


@pytest.mark.parametrize("cfg", [Config(), _custom()], ids=["defaults", "custom"])
def test_dump_round_trips_through_load(tmp_path: Path, cfg: Config) -> None:
    j = tmp_path / "resolved.json"
    j.write_text(json.dumps(config.dump(cfg)))
    assert config.load(j) == cfg
    assert config.dump(config.load(j)) == config.dump(cfg)
    y = tmp_path / "resolved.yaml"
    y.write_text(config.to_yaml(cfg))
    assert config.load(y) == cfg
    assert config.to_yaml(config.load(y)) == config.to_yaml(cfg)
    assert config.load(None, [], base=config.dump(cfg)) == cfg


def test_to_yaml_is_readable_yaml() -> None:
    text = config.to_yaml(_custom())
    data = yaml.safe_load(text)
    assert data["train"]["steps"] == 7 and data["protocol"]["targets"] == ["a", "b"]
    assert list(data) == list(Config.model_fields)  # section order kept


def test_old_keys_are_aliases_of_the_owners_sections(tmp_path: Path) -> None:
    """loss.* → mdvad.*, model.<trunk|hidden|ang_scale|dropout|unseen_finetune> → mdvad.*, and the renamed margins,
    in files, --set overrides and attribute access; an error names the field as it was given."""
    p = tmp_path / "old.yaml"
    p.write_text("loss:\n  k: 5\n  margin: 0.2\nmodel:\n  trunk: bn-wvad\n  hidden: 16\n")
    cfg = config.load(p, ["loss.ac=false", "model.unseen_finetune=new-head", "bn_wvad.margin=2", "como.margin=0.5",
                          "mmil.margin=0.7", "mdvad.margin=0.25"])
    m = cfg.mdvad
    assert (m.k, m.angular_margin, m.trunk, m.hidden, m.ac, m.unseen_finetune) == (5, 0.25, "bn-wvad", 16, False, "new-head")
    assert (cfg.bn_wvad.mpp_margin, cfg.como.distance_margin, cfg.mmil.rank_margin) == (2.0, 0.5, 0.7)
    assert cfg.loss is cfg.mdvad and cfg.loss.margin == 0.25 and cfg.model.trunk == "bn-wvad" and cfg.bn_wvad.margin == 2.0
    cfg.model.hidden = 8
    cfg.loss.tau = 0.4
    assert cfg.mdvad.hidden == 8 and cfg.mdvad.tau == 0.4
    assert "mdvad" not in config.dump(cfg)["model"] and "loss" not in config.dump(cfg)
    assert config.load(None, ["mdvad.k=3", "loss.k=4"]).mdvad.k == 4  # a later step wins, whichever name it uses
    assert Config.model_validate({"loss": {"ac": False}, "model": {"trunk": "mmil"}}).mdvad.trunk == "mmil"
    assert _error(None, ["loss.k=0"]).startswith("invalid config: loss.k:")
    assert _error(None, ["model.trunk=nope"]) .startswith("invalid config: model.trunk: unknown trunk 'nope'")


def test_sections_are_registered_by_their_owners() -> None:
    from omnivad.sections import registered_sections

    owned = {"mdvad", "bn_wvad", "como", "mmil", "tune", "uvad", "video", "zxvad"}
    assert owned <= set(registered_sections()) and set(registered_sections()) == set(Config.model_fields)
    assert not owned & set(config._CROSS_CUTTING)
    assert type(Config().uvad).__module__ == "omnivad.uvad.config"
    assert type(Config().mdvad).__module__ == "omnivad.methods.mdvad.config"
