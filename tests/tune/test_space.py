"""Search spaces, parameter application, the Pareto front and the trial tables (no Ray)."""

from __future__ import annotations

import math

import pytest

from omnivad import config
from omnivad.tune.config import SearchParam
from omnivad.errors import ConfigError
from omnivad.tune.pareto import dominates, pareto_front, plot_front
from omnivad.tune.report import to_csv, to_markdown
from omnivad.tune.space import apply_params, current_values, default_space, resolve_space, tune_domains


def test_default_space_is_the_issue_s_and_bn_wvad_adds_rho():
    cfg = config.load()
    space = {p.path: p for p in resolve_space(cfg)}
    assert list(space) == ["mdvad.tau", "mdvad.ac_weight", "mdvad.angular_margin", "mdvad.topk_ratio", "train.lr"]
    assert (space["mdvad.tau"].low, space["mdvad.tau"].high, space["mdvad.tau"].log) == (0.1, 0.6, False)
    assert (space["mdvad.ac_weight"].low, space["mdvad.ac_weight"].high, space["mdvad.ac_weight"].log) == (0.1, 20.0, True)
    assert (space["mdvad.topk_ratio"].low, space["mdvad.topk_ratio"].high) == (1 / 32, 1 / 4)
    assert (space["train.lr"].low, space["train.lr"].high, space["train.lr"].log) == (1e-5, 1e-3, True)
    bn = [p.path for p in default_space("bn-wvad")]
    assert bn[-2:] == ["bn_wvad.rho_sample", "bn_wvad.rho_batch"]
    domains = tune_domains(resolve_space(cfg))
    assert set(domains) == set(space)


def test_apply_params_maps_topk_ratio_to_k_and_validates():
    cfg = config.load(overrides=["data.segments=32"])
    out = apply_params(cfg, {"mdvad.topk_ratio": 0.2, "mdvad.tau": 0.45, "train.lr": 3e-4})
    assert out.mdvad.k == round(0.2 * 32) == 6 and out.mdvad.tau == 0.45 and out.train.lr == 3e-4
    assert apply_params(cfg, {"mdvad.topk_ratio": 0.001}).mdvad.k == 1  # at least one snippet
    assert cfg.mdvad.tau == 0.3  # the base config is untouched
    with pytest.raises(ConfigError, match="mdvad.angular_margin"):
        apply_params(cfg, {"mdvad.angular_margin": 5.0})
    # the start point reads the config back: K=3 of T=32
    vals = current_values(cfg, resolve_space(cfg))
    assert vals["mdvad.topk_ratio"] == pytest.approx(3 / 32) and vals["mdvad.tau"] == 0.3 and vals["train.lr"] == 5e-5


def test_space_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"tune.space\[0\].path: 'mdvad.nope' is not a config field"):
        resolve_space(config.load(overrides=["tune.space=[{path: mdvad.nope, low: 0, high: 1}]"]))
    with pytest.raises(ConfigError, match="not numeric"):
        resolve_space(config.load(overrides=["tune.space=[{path: mdvad.ac_rule, low: 0, high: 1}]"]))
    with pytest.raises(ConfigError, match="tune.space.0: .*mdvad.tau: expected high > low"):
        config.load(overrides=["tune.space=[{path: mdvad.tau, low: 0.5, high: 0.1}]"])
    with pytest.raises(ConfigError, match="log-scale"):
        config.load(overrides=["tune.space=[{path: train.lr, low: 0, high: 1, log: true}]"])


def test_pareto_front_by_hand():
    rows = [
        {"trial_id": "a", "e1": 0.9, "e2": 0.5},  # front (best E1)
        {"trial_id": "b", "e1": 0.8, "e2": 0.7},  # front
        {"trial_id": "c", "e1": 0.7, "e2": 0.7},  # dominated by b
        {"trial_id": "d", "e1": 0.6, "e2": 0.8},  # front (best E2)
        {"trial_id": "e", "e1": 0.5, "e2": 0.4},  # dominated by all of the front
        {"trial_id": "f", "e1": math.nan, "e2": 0.99},  # incomplete: left out
    ]
    front = pareto_front(rows, ["e1", "e2"])
    assert [r["trial_id"] for r in front] == ["a", "b", "d"]
    assert dominates((0.8, 0.7), (0.7, 0.7)) and not dominates((0.7, 0.7), (0.7, 0.7))
    png = plot_front([r for r in rows if r["trial_id"] != "f"], front, ("e1", "e2"), "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_trial_tables():
    rows = [{"trial_id": "a", "status": "completed", "e1_val_auc": 0.81234, "mdvad.tau": 0.3},
            {"trial_id": "b", "status": "stopped", "e1_val_auc": math.nan, "mdvad.tau": 0.5}]
    cols = ["trial_id", "status", "e1_val_auc", "mdvad.tau"]
    assert to_csv(rows, cols).splitlines() == ["trial_id,status,e1_val_auc,mdvad.tau", "a,completed,0.81234,0.3", "b,stopped,nan,0.5"]
    md = to_markdown(rows, cols).splitlines()
    assert md[0] == "| trial_id | status | e1_val_auc | mdvad.tau |" and md[2] == "| a | completed | 0.8123 | 0.3 |"
    assert md[3] == "| b | stopped |  | 0.5 |"


def test_search_param_type_int():
    p = SearchParam(path="mdvad.k", low=1, high=8, type="int")
    assert p.type == "int"


def test_bn_wvad_space_uses_its_rho_fields_and_leaves_unset_ones_free():
    cfg = config.load(overrides=["model.method=bn-wvad"])
    paths = [p.path for p in resolve_space(cfg)]
    assert paths[-2:] == ["bn_wvad.rho_sample", "bn_wvad.rho_batch"]
    start = current_values(cfg, resolve_space(cfg))
    assert "mdvad.tau" in start and all(
        (k in start) == (getattr(cfg.bn_wvad, k.split(".")[1]) is not None) for k in paths[-2:])
    assert apply_params(cfg, {"bn_wvad.rho_sample": 0.2}).bn_wvad.rho_sample == 0.2


def test_old_keys_in_tune_space_are_aliases():
    cfg = config.load(overrides=["tune.space=[{path: loss.tau, low: 0.1, high: 0.6}, {path: loss.topk_ratio, low: 0.03, high: 0.25}, "
                                 "{path: loss.margin, low: 0.0, high: 0.6}]"])
    space = resolve_space(cfg)
    assert current_values(cfg, space) == {"loss.tau": 0.3, "loss.topk_ratio": 3 / 32, "loss.margin": 0.3}
    out = apply_params(cfg, {"loss.tau": 0.45, "loss.topk_ratio": 0.2, "loss.margin": 0.1})
    assert (out.mdvad.tau, out.mdvad.k, out.mdvad.angular_margin) == (0.45, 6, 0.1) and out.loss.tau == 0.45
    with pytest.raises(ConfigError, match="loss.margin"):
        apply_params(cfg, {"loss.margin": 5.0})
