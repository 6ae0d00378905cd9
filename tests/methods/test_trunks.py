"""The trunk mechanism: registered shared trunks under MDVAD's heads and AC (``model.trunk``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omnivad import config
from omnivad.errors import ConfigError
from omnivad.methods import trunks
from omnivad.methods.base import Batch
from omnivad.methods.mdvad import MDVADNet
from omnivad.methods.registry import get_method

TINY_BN = ["bn_wvad.embed_dim=16", "bn_wvad.heads=2", "bn_wvad.dim_head=4", "bn_wvad.mlp_dim=8", "bn_wvad.head_ratios=[2,4]"]
LEGACY_KEYS = {"conv_agg.weight", "conv_agg.bias", "bn_agg.weight", "bn_agg.bias", "bn_agg.running_mean",
               "bn_agg.running_var", "bn_agg.num_batches_tracked", "conv_da.weight", "conv_da.bias", "bn_da.weight",
               "bn_da.bias", "bn_da.running_mean", "bn_da.running_var", "bn_da.num_batches_tracked"}


def test_registry_lists_and_builds_trunks() -> None:
    assert {"mdvad", "bn-wvad", "mmil"} <= set(trunks.list_trunks())
    cfg = config.load(overrides=TINY_BN)
    for name, out_dim in (("mdvad", 6), ("bn-wvad", 16), ("mmil", 512)):
        t = trunks.build_trunk(name, cfg, 12)
        assert t.out_dim == out_dim
        assert t(torch.randn(2, 5, 12)).shape == (2, 5, out_dim)
    with pytest.raises(ConfigError, match="model.trunk: unknown trunk 'resnet'"):
        trunks.build_trunk("resnet", cfg, 12)
    with pytest.raises(ValueError, match="registered twice"):
        trunks.register_trunk("mdvad")(lambda cfg, c: nn.Identity())


def test_default_trunk_keeps_mdvadnet_state_dict_keys_and_old_checkpoints() -> None:
    """The default trunk's layers stay MDVADNet's own (no ``trunk.`` prefix), so checkpoints saved before trunks
    existed (no ``trunk`` in the extra state) still load and give the same outputs."""
    torch.manual_seed(0)
    model = MDVADNet(8, ["A", "B"], head="null", hidden=4).eval()
    sd = model.state_dict()
    assert LEGACY_KEYS <= set(sd) and not any(k.startswith("trunk.") for k in sd)
    old = dict(sd)
    old["_extra_state"] = {k: v for k, v in sd["_extra_state"].items() if k not in ("trunk", "trunk_config")}
    again = MDVADNet(8, ["A", "B"], head="null", hidden=4).eval()
    again.load_state_dict(old)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(again(x)["abn"], model(x)["abn"])
    torch.testing.assert_close(MDVADNet.from_state_dict(old).eval()(x)["abn"], model(x)["abn"])


def test_bn_wvad_trunk_under_nullang_heads_and_ac() -> None:
    """``model.method=nullang-mil model.trunk=bn-wvad``: BN-WVAD's encoder feeds F_DA; the heads and AC sit on
    its out_dim; the trunk and its config section travel in the checkpoint."""
    torch.manual_seed(1)
    cfg = config.load(overrides=[*TINY_BN, "model.method=nullang-mil", "mdvad.trunk=bn-wvad", "mdvad.hidden=8"])
    method = get_method("nullang-mil")
    model = method.build(cfg, ["A", "B", "C"], 12)
    assert isinstance(model.trunk, trunks.trunk_entry("bn-wvad").factory(cfg, 12).__class__)
    assert model.fc.in_features == 16 and model.ac_head[0].in_features == 16
    assert not hasattr(model, "conv_agg")
    out = model(torch.randn(4, 6, 12))
    assert out["abn"].shape == (4, 6, 3) and out["nrm"].shape == (4, 6, 3) and out["ac"].shape == (4, 6)
    batch = Batch(torch.randn(6, 2, 6, 12), torch.ones(6, 2, dtype=torch.bool), torch.tensor([0.0, 1, 0, 1, 0, 1]),
                  torch.tensor([0, 0, 1, 1, 2, 2]))
    loss, _ = method.loss(model, batch, cfg)
    loss.backward()
    assert model.trunk.embed.weight.grad is not None and model.trunk.embed.weight.grad.abs().sum() > 0
    sd = model.state_dict()
    assert sd["_extra_state"]["trunk"] == "bn-wvad" and sd["_extra_state"]["trunk_config"]["bn_wvad"]["embed_dim"] == 16
    rebuilt = MDVADNet.from_state_dict(sd).eval()  # no job config needed
    model.eval()
    x = torch.randn(2, 2, 6, 12)[0]
    torch.testing.assert_close(method.score(rebuilt, x, "B"), method.score(model, x, "B"))
    with pytest.raises(ValueError, match="mismatch on trunk"):
        MDVADNet(12, ["A", "B", "C"], head="nullang", hidden=8).load_state_dict(sd)


def test_a_new_registered_trunk_works_under_the_heads() -> None:
    name = "test-linear-trunk"

    @trunks.register_trunk(name)
    def linear(cfg: config.Config, feature_dim: int) -> nn.Module:
        lin = nn.Linear(feature_dim, 3)
        lin.out_dim = 3  # type: ignore[assignment]
        return lin

    try:
        model = MDVADNet(10, ["A"], head="single", hidden=4, trunk=name)
        assert model(torch.randn(2, 5, 10))["abn"].shape == (2, 5, 1)
        assert "trunk.weight" in model.state_dict()
    finally:
        trunks._TRUNKS.pop(name)


def test_unwrap_as_sees_through_wrappers_and_names_the_method_on_a_wrong_model():
    from omnivad.methods.base import unwrap_as

    class Wrapper(torch.nn.Module):  # DistributedDataParallel keeps the model in ``.module`` like this
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    inner = torch.nn.Linear(2, 1)
    assert unwrap_as(Wrapper(Wrapper(inner)), torch.nn.Linear, "mil") is inner
    with pytest.raises(ValueError, match="method 'mmil' expects a Linear, got Conv1d"):
        unwrap_as(Wrapper(torch.nn.Conv1d(1, 1, 1)), torch.nn.Linear, "mmil")
