"""CLAV + CoMo module ablations (spec clav_como.md Table 2a / Table 3 / Table 5, §7): ``como.ica=false`` (F = B, no
ICA parameters) and ``como.como=false`` (no CoMo module: no S_R, F_R, L_dist(F_R), L_int, L_obj; score S)."""

from __future__ import annotations

import pytest
import torch

from omnivad import config
from omnivad.methods.base import Batch
from omnivad.methods.como import build_net
from omnivad.methods.como.loss import como_loss, mil_loss
from omnivad.methods.registry import get_method
from omnivad.methods.trunks import build_trunk

D, T = 8, 8
SMALL = ["model.method=como", "como.object_classes=5", "como.hidden=16", "como.embed_dim=8", "como.nodes=4",
         "como.states=8"]
COMO_PARTS = ("dyn1", "dyn2", "ctx_conv", "proj", "state", "state_c", "gcn_m", "gcn_c", "fuse_node", "fuse_state")


def _cfg(*extra: str) -> config.Config:
    return config.load(overrides=[*SMALL, *extra])


def _batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    b = 6
    side = {"flow": torch.rand(b, T, generator=g), "objects": torch.rand(b, T, 5, generator=g)}
    return Batch(torch.randn(b, 2, T, D, generator=g), torch.ones(b, 2, dtype=torch.bool),
                 torch.tensor([0.0, 0, 0, 1, 1, 1]), torch.zeros(b, dtype=torch.int64), side)


def _names(net: torch.nn.Module) -> set[str]:
    return {n.split(".")[1] if n.startswith("como.") else n.split(".")[0] for n, _ in net.named_parameters()}


def test_defaults_keep_both_modules() -> None:
    c = config.load().como
    assert c.ica and c.como
    names = _names(build_net(_cfg(), ["A"], D))
    assert {"ica_conv", "fc_r", "obj_head", *COMO_PARTS} <= names


def test_without_ica_the_motion_stream_is_the_input_and_ica_parameters_are_absent() -> None:
    torch.manual_seed(0)
    net = build_net(_cfg("como.ica=false"), ["A"], D)
    assert "ica_conv" not in _names(net) and not hasattr(net.como, "ica_conv")
    full = build_net(_cfg(), ["A"], D)
    n_params = sum(p.numel() for p in net.parameters())
    assert sum(p.numel() for p in full.parameters()) - n_params == 2 * D * D * 3 + 2 * D  # Conv1d D→2D, k=3
    x = torch.randn(3, T, D)
    out = net(x)
    assert torch.equal(out["feat"], x)  # F = B
    assert "s_r" in out and "f_r" in out  # CoMo still there
    loss, logs = como_loss(net, _batch(), _cfg("como.ica=false"))
    loss.backward()
    assert logs["int_on"] == 1.0 and logs["dist_r"] > 0


def test_without_como_no_relational_stream_no_aux_terms_and_the_score_is_s() -> None:
    torch.manual_seed(0)
    cfg = _cfg("como.como=false")
    net = build_net(cfg, ["A"], D)
    names = _names(net)
    assert not names & {"fc_r", "obj_head", *COMO_PARTS}  # the CoMo module's parameters are gone
    assert "ica_conv" in names and {"csn", "csa", "fc1", "fc2", "fc3"} <= names
    out = net(torch.randn(3, T, D))
    assert set(out) == {"feat", "emb", "s"}
    loss, logs = como_loss(net, _batch(), cfg)  # side signals present, but L_aux belongs to CoMo
    loss.backward()
    assert logs["dist_r"] == logs["int"] == logs["obj"] == 0.0 and logs["int_on"] == logs["obj_on"] == 0.0
    assert logs["dist_f"] > 0 and logs["cs"] > 0
    # the MIL term is over the K scores of S only
    net.eval()
    with torch.no_grad():
        x = _batch().x
        s = net(x.reshape(-1, T, D))["s"].reshape(6, 2, T).mean(1)
    video = torch.randn(2, T, D)
    method = get_method("como")
    with torch.no_grad():
        expect = net(video)["s"].mean(0)
    assert torch.allclose(method.score(net, video, "XD"), expect)  # no α·S_R, whatever the domain's α
    assert mil_loss(s, None, torch.tensor([0.0, 0, 0, 1, 1, 1]), 3).item() > 0


def test_mil_without_s_r_is_the_bce_of_the_top_k_of_s() -> None:
    s = torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.8, 0.7, 0.3, 0.6]])
    y = torch.tensor([0.0, 1.0])
    top = torch.tensor([[0.9, 0.5], [0.8, 0.7]])
    expect = -(torch.log(1 - top[0]).sum() + torch.log(top[1]).sum()) / 4
    assert mil_loss(s, None, y, 2).item() == pytest.approx(expect.item(), rel=1e-5)
    assert mil_loss(s, s, y, 2).item() == pytest.approx(expect.item(), rel=1e-5)  # S_R = S: the same mean


def test_the_trunk_follows_the_switches() -> None:
    trunk = build_trunk("como", _cfg("como.como=false"), D)
    assert trunk.out_dim == D and trunk(torch.randn(2, T, D)).shape == (2, T, D)
    trunk = build_trunk("como", _cfg("como.ica=false"), D)
    assert trunk.out_dim == D + 8
