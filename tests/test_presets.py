"""Shipped presets (``--preset NAME``, ``platform/omnivad/presets/``): each loads through the real config schema
and its values are the specs' (the expected values below are written from the spec texts, not the YAML); the
precedence defaults < preset < --config < --set; an unknown name lists the presets; the CLI listing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omnivad import config
from omnivad.cli import main
from omnivad.errors import ConfigError
from omnivad.presets import list_presets, preset_text

PRESETS = ["bn-wvad-st", "bn-wvad-ucf", "bn-wvad-xd", "como-st", "como-ucf", "como-xd", "mdvad-paper", "uvad-st"]

# bn_wvad.md §2.6/§3 ρ per dataset, §3 evaluation cadence (XD every 5, UCF every 10; ST not given: UCF's)
BN_WVAD = {"bn-wvad-xd": (0.2, 0.4, 5), "bn-wvad-ucf": (0.1, 0.2, 10), "bn-wvad-st": (0.3, 0.4, 10)}
# clav_como.md §1.2/§4: total batch (half normal, half abnormal), T, test fusion α
COMO = {"como-ucf": (64, 16, 0.1), "como-xd": (16, 16, 1.0), "como-st": (64, 8, 0.4)}


def test_the_shipped_presets_are_listed() -> None:
    assert list_presets() == PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_every_value_of_a_preset_names_its_spec_section(name: str) -> None:
    lines = [ln for ln in preset_text(name).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for ln in lines:
        if ln.rstrip().endswith(":"):  # a section header
            continue
        assert re.search(r"#.*\b(mdvad|bn_wvad|clav_como|wocc_ws)\.md\b.*§", ln), f"{name}: no spec source on {ln!r}"


@pytest.mark.parametrize("name", sorted(BN_WVAD))
def test_bn_wvad_presets_match_the_spec(name: str) -> None:
    cfg = config.load(preset=name)
    rho_s, rho_b, every = BN_WVAD[name]
    assert cfg.model.method == "bn-wvad"
    # §3: T=200, Adam lr 1e-4, wd 5e-5, 3000 iterations, seed 2022, clip 1.0, 64 + 64 crop samples
    assert cfg.data.segments == 200 and cfg.data.resample == "mean"
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.steps, cfg.train.seed) == (1e-4, 5e-5, 3000, 2022)
    assert cfg.train.grad_clip == 1.0
    assert cfg.bn_wvad.batching == "crop_samples" and cfg.bn_wvad.samples_per_class == 64
    assert cfg.data.batch_per_class >= 64
    assert (cfg.bn_wvad.rho_sample, cfg.bn_wvad.rho_batch) == (rho_s, rho_b)
    # §2.7: m = 1, λ1 = 5, λ2 = 20; §2.4 α = 0.1; §2.2 dropout 0; §7.2 mean
    assert (cfg.bn_wvad.mpp_margin, cfg.bn_wvad.lambda1, cfg.bn_wvad.lambda2) == (1.0, 5.0, 20.0)
    assert (cfg.bn_wvad.bn_momentum, cfg.bn_wvad.dropout, cfg.bn_wvad.normal_loss) == (0.1, 0.0, "mean")
    assert cfg.train.eval_every == every and cfg.train.selection == "best-test"  # §7.1 the authors' selection
    if name == "bn-wvad-xd":
        assert cfg.metrics.domain_metric == {"XD": "ap"}


@pytest.mark.parametrize("name", sorted(COMO))
def test_como_presets_match_the_spec(name: str) -> None:
    cfg = config.load(preset=name)
    batch, t, alpha = COMO[name]
    c = cfg.como
    assert cfg.model.method == "como" and c.ica and c.como
    assert 2 * cfg.data.batch_per_class == batch and cfg.data.segments == t and c.alpha == alpha
    # §4: Adam lr 1e-3, wd 5e-4, margin 0.3, K 3, c_s 1, d 10, n/st 32/128, N 0.8·T, d = 128; RTFM 15k, dropout 0.7
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.steps) == (1e-3, 5e-4, 15000)
    assert (c.distance_margin, c.k, c.cs_weight, c.dist_weight) == (0.3, 3, 1.0, 10.0)
    assert (c.nodes, c.states, c.context_fraction, c.embed_dim, c.dropout) == (32, 128, 0.8, 128, 0.7)
    assert (c.smooth_weight, c.sparse_weight) == (8e-4, 8e-3)  # §3.3


def test_mdvad_paper_preset_matches_the_spec() -> None:
    cfg = config.load(preset="mdvad-paper")
    m = cfg.mdvad
    assert cfg.model.method == "nullang-mil" and m.ac
    # §7: T 32, K 3, lr 5e-5, wd 5e-4, λ 10, τ 0.3, m 0.3; A11 15k / 1k / 5k; A8 focal 2 / 0.25
    assert (cfg.data.segments, m.k, m.ac_weight, m.tau, m.angular_margin) == (32, 3, 10.0, 0.3, 0.3)
    assert (cfg.train.lr, cfg.train.weight_decay) == (5e-5, 5e-4)
    assert (cfg.train.steps, cfg.train.finetune_steps, cfg.train.e4_steps) == (15000, 1000, 5000)
    assert (m.focal_gamma, m.focal_alpha) == (2.0, 0.25)
    # §2.3: 210 normal + 176 abnormal per domain, 3 folds, categories balanced; A10: 32 + 32 per step
    assert (cfg.benchmark.volume_normal, cfg.benchmark.volume_abnormal, cfg.benchmark.folds) == (210, 176, 3)
    assert cfg.benchmark.category_balance == "equal" and cfg.data.batch_per_class == 32
    assert cfg.protocol.folds == 3 and cfg.train.selection == "final"


def test_uvad_st_preset_matches_the_spec() -> None:
    u = config.load(preset="uvad-st").uvad
    # §5: Q 15% (SHT), P 10%, 6 modules × 6 loops, Beta(1,5), bags 16, 32+32 bags, 500 iters, RTFM Adam 1e-3 / 5e-3,
    # k 3, m 100, α 1e-4, λ_sp 8e-3, λ_sm 8e-4, Adamax 5e-4, batch 256, clip 100, seg_len 24 / stride 6, seed 2023
    assert (u.occ, u.ws, u.q, u.stop_ratio, u.max_modules, u.loops) == ("stg-nf", "rtfm", 0.15, 0.1, 6, 6)
    assert u.beta == (1.0, 5.0) and (u.bag_size, u.ws_batch, u.ws_iters) == (16, 32, 500)
    assert (u.ws_lr, u.ws_weight_decay, u.rtfm_k, u.rtfm_margin) == (1e-3, 5e-3, 3, 100.0)
    assert (u.rtfm_alpha, u.rtfm_sparsity, u.rtfm_smooth) == (1e-4, 8e-3, 8e-4)
    assert (u.occ_lr, u.occ_batch, u.grad_clip, u.seg_len, u.seg_stride, u.seed) == (5e-4, 256, 100.0, 24, 6, 2023)
    assert (u.occ_labels, u.threshold, u.ws_input) == ("soft", "adaptive", "crops")  # Table 4 full method, §3.3


def test_precedence_defaults_preset_file_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 3.0e-4\n  steps: 7\n")
    cfg = config.load(f, ["train.steps=9"], preset="bn-wvad-xd")
    assert cfg.train.lr == 3e-4  # the file beats the preset
    assert cfg.train.steps == 9  # --set beats the file
    assert cfg.train.seed == 2022  # the preset beats the defaults
    assert cfg.train.log_every == config.TrainConfig().log_every  # defaults where nobody says


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="unknown preset.*available: bn-wvad-st, .*uvad-st"):
        config.load(preset="bn-wvad-imagenet")


def test_cli_lists_and_prints_presets_and_a_run_takes_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS)
    assert main(["config", "presets", "como-xd"]) == 0
    assert "alpha: 1.0" in capsys.readouterr().out
    assert main(["run", "--preset", "bn-wvad-ucf", "--set", "train.steps=5", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "grad_clip: 1.0" in out and "steps: 5" in out and "batching: crop_samples" in out
    assert main(["uvad", "--preset", "uvad-st", "--print-config"]) == 0
    assert "occ: stg-nf" in capsys.readouterr().out
    assert main(["run", "--preset", "nope", "--print-config"]) == 1
    assert "available: bn-wvad-st" in capsys.readouterr().err
