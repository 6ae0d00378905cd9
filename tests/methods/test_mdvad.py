"""MDVAD methods: model shapes, split-max, losses by hand, Eq. 5 branches, Null masking, crops, checkpoints,
and a small learning check on separable synthetic data."""

from __future__ import annotations

import io
import math
import os

import pytest
import torch
import torch.nn.functional as F

from omnivad.config import Config
from omnivad.methods.base import Batch
from omnivad.methods.mdvad.loss import (
    ac_pseudo_labels,
    ac_weight_mode,
    add_margin,
    combine_heads,
    focal_loss,
    forward_crops,
    mil_loss,
    null_mil_loss,
    nullang_mil_loss,
    snippet_weights,
    topk_indices,
)
from omnivad.methods.mdvad.model import MDVADNet
from omnivad.methods.mdvad.score import scores_from_outputs
from omnivad.methods.registry import get_method, list_methods

HEADS = ["single", "null", "nullang"]
METHOD_OF = {"single": "mil", "null": "null-mil", "nullang": "nullang-mil"}
DOMS = ["A", "B", "C"]



def cfg_with(**loss) -> Config:
    cfg = Config()
    for k, v in loss.items():
        setattr(cfg.loss, k, v)
    return cfg


# ---------------------------------------------------------------------------------------------- model
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("c", [16, 32])
def test_output_shapes(head: str, c: int) -> None:
    torch.manual_seed(0)
    model = MDVADNet(c, DOMS, head=head, hidden=8)
    out = model(torch.randn(4, 7, c))
    m = 1 if head == "single" else 3
    assert out["ac"].shape == (4, 7)
    assert out["abn"].shape == (4, 7, m)
    assert ((out["ac"] > 0) & (out["ac"] < 1)).all()
    if head == "nullang":
        assert out["nrm"].shape == (4, 7, 3)
        assert out["abn"].abs().max() <= 1 + 1e-5 and out["nrm"].abs().max() <= 1 + 1e-5
    else:
        assert "nrm" not in out
        assert ((out["abn"] > 0) & (out["abn"] < 1)).all()
    assert model.domains == DOMS and model.num_heads == m


@pytest.mark.parametrize("head", HEADS)
def test_table_a4_sizes_at_2048(head: str) -> None:
    model = MDVADNet(2048, [f"d{i}" for i in range(6)], head=head)
    assert model.conv_agg.weight.shape == (4096, 2048, 3)
    assert model.conv_da.weight.shape == (1024, 2048, 3)
    assert model.bn_agg.num_features == 2048 and model.bn_da.num_features == 1024
    widths = [(l.in_features, l.out_features) for l in model.ac_head if isinstance(l, torch.nn.Linear)]
    assert widths == [(1024, 512), (512, 128), (128, 1)]
    drops = [l.p for l in model.ac_head if isinstance(l, torch.nn.Dropout)]
    assert drops == [0.7, 0.7]
    assert model.fc.weight.shape == (128, 1024)
    if head == "null":
        assert len(model.heads) == 6 and all(h.weight.shape == (1, 128) for h in model.heads.values())
    if head == "nullang":
        assert len(model.ang_heads) == 6 and all(p.shape == (2, 128) for p in model.ang_heads.values())


def test_bad_construction() -> None:
    with pytest.raises(ValueError):
        MDVADNet(15, DOMS)
    with pytest.raises(ValueError):
        MDVADNet(16, ["A", "A"])
    with pytest.raises(ValueError):
        MDVADNet(16, DOMS, head="arc")
    with pytest.raises(ValueError):
        MDVADNet(16, DOMS)(torch.randn(2, 5, 8))


def test_split_max_value_and_gradient() -> None:
    model = MDVADNet(2, ["A"], head="null", hidden=4).eval()
    with torch.no_grad():
        w = torch.zeros(4, 2, 3)
        w[:, :, 1] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.5, 0.0]])
        model.conv_agg.weight.copy_(w)
        model.conv_agg.bias.zero_()
    seen: list[torch.Tensor] = []
    model.bn_agg.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
    model(torch.tensor([[[1.0, 2.0]]]))  # (N=1, T=1, C=2): conv outputs [1, 2, 6, 0.5]
    agg = seen[0]  # ReLU(split-max), (1, 2, 1)
    assert torch.allclose(agg.flatten(), torch.tensor([6.0, 2.0]))
    agg.sum().backward()
    # only the larger element of each pair (channel 2 for pair 0, channel 1 for pair 1) gets gradient
    assert torch.equal(model.conv_agg.bias.grad, torch.tensor([0.0, 1.0, 1.0, 0.0]))


# ---------------------------------------------------------------------------------------------- losses
def test_topk_and_mil_by_hand() -> None:
    s = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.2], [0.5, 0.4, 0.3, 0.2, 0.1]])
    idx = topk_indices(s, 2)
    assert [sorted(r) for r in idx.tolist()] == [[1, 3], [0, 1]]
    assert topk_indices(s, 9).shape == (2, 5)
    y = torch.tensor([1.0, 0.0])
    expected = (-math.log(0.9) - math.log(0.8) - math.log(0.5) - math.log(0.6)) / 4
    assert mil_loss(s, y, 2).item() == pytest.approx(expected, rel=1e-5)
    # §5.6 weight: abnormal video's selected snippets × s^AC, normal video untouched
    s_ac = torch.tensor([[0.0, 0.5, 0.0, 0.25, 0.0], [0.9, 0.9, 0.9, 0.9, 0.9]])
    w = snippet_weights(s_ac, y, "mul")
    expected_w = (-0.5 * math.log(0.9) - 0.25 * math.log(0.8) - math.log(0.5) - math.log(0.6)) / 4
    assert mil_loss(s, y, 2, w).item() == pytest.approx(expected_w, rel=1e-5)
    w1 = snippet_weights(s_ac, y, "one-plus")
    assert torch.allclose(w1[0], 1 + s_ac[0]) and torch.equal(w1[1], torch.ones(5))
    assert snippet_weights(s_ac, y, None) is None


def test_ac_weight_modes() -> None:
    assert ac_weight_mode("adaptation", True, False) is None
    assert ac_weight_mode("adaptation", True, True) == "mul"
    assert ac_weight_mode("always", True, False) == "mul"
    assert ac_weight_mode("one-plus", True, True) == "one-plus"
    assert ac_weight_mode("off", True, True) is None
    assert ac_weight_mode("always", False, True) is None  # non-AC variants never weight


def test_add_margin_by_hand_and_monotone() -> None:
    m = 0.3
    c = torch.tensor([math.cos(0.5), 0.0, math.cos(3.0)], dtype=torch.float64)
    got = add_margin(c, m)
    assert got[0].item() == pytest.approx(math.cos(0.8), abs=1e-6)
    assert got[1].item() == pytest.approx(-math.sin(0.3), abs=1e-6)
    # θ + m > π: fallback cos θ − m sin m
    assert got[2].item() == pytest.approx(math.cos(3.0) - m * math.sin(m), abs=1e-6)
    theta = torch.linspace(0.01, math.pi - 0.01, 400, dtype=torch.float64)
    phi = add_margin(torch.cos(theta), m)
    assert (phi[1:] < phi[:-1]).all()
    assert (phi < torch.cos(theta)).all()  # the margin always makes the target logit smaller


def test_nullang_loss_by_hand() -> None:
    m = 0.3
    ca = torch.tensor([[[0.5], [0.4]]])  # (B=1, T=2, M=1)
    cn = torch.tensor([[[0.6], [0.0]]])
    dom = torch.tensor([0])

    def ce(true_logit: float, other: float) -> float:
        return -true_logit + math.log(math.exp(true_logit) + math.exp(other))

    # abnormal, top-K on cos_a → snippet 0; margin on θ^a
    got = nullang_mil_loss(ca, cn, torch.tensor([1.0]), dom, 1, m)
    assert got.item() == pytest.approx(ce(math.cos(math.acos(0.5) + m), 0.6), rel=1e-5)
    # normal: margin on θ^n
    got = nullang_mil_loss(ca, cn, torch.tensor([0.0]), dom, 1, m)
    assert got.item() == pytest.approx(ce(math.cos(math.acos(0.6) + m), 0.5), rel=1e-5)
    # "combined" picks on cos_a + 1 − cos_n → snippet 1
    got = nullang_mil_loss(ca, cn, torch.tensor([1.0]), dom, 1, m, topk_score="combined")
    assert got.item() == pytest.approx(ce(math.cos(math.acos(0.4) + m), 0.0), rel=1e-5)
    # scale multiplies the logits
    got = nullang_mil_loss(ca, cn, torch.tensor([1.0]), dom, 1, m, scale=8.0)
    assert got.item() == pytest.approx(ce(8 * math.cos(math.acos(0.5) + m), 8 * 0.6), rel=1e-5)


def test_combine_heads_own_column_and_unseen_max() -> None:
    s = torch.tensor([[[0.1, 0.7, 0.3], [0.9, 0.2, 0.4]], [[0.1, 0.7, 0.3], [0.9, 0.2, 0.4]]], requires_grad=True)
    out = combine_heads(s, torch.tensor([2, -1]))
    assert torch.allclose(out, torch.tensor([[0.3, 0.4], [0.7, 0.9]]))
    out.sum().backward()
    expected = torch.zeros(2, 2, 3)
    expected[0, :, 2] = 1
    expected[1, 0, 1] = 1
    expected[1, 1, 0] = 1
    assert torch.equal(s.grad, expected)
    with pytest.raises(ValueError):
        combine_heads(s, torch.tensor([3, 0]))
    # Null-MIL on an unseen batch = Eq. 1 on the max over heads
    y = torch.tensor([1.0, 1.0])
    assert null_mil_loss(s, y, torch.tensor([-1, -1]), 1).item() == pytest.approx(-math.log(0.9), rel=1e-5)


def test_ac_pseudo_labels_by_hand() -> None:
    a = torch.tensor(
        [[[0.1, 0.5, 0.9], [0.8, 0.85, 0.9], [0.05, 0.2, 0.31], [0.0, 0.25, 0.75], [0.7, 0.7, 0.7]]], requires_grad=True
    )
    diff = ac_pseudo_labels(a, "diff", tau=0.3)
    std = ac_pseudo_labels(a, "std", tau=0.1)
    fixed = ac_pseudo_labels(a, "fixed")
    assert diff.tolist() == [[1, 0, 0, 1, 0]]
    assert std.tolist() == [[1, 0, 1, 1, 0]]
    assert fixed.tolist() == [[1, 0, 1, 0, 0]]
    assert not diff.requires_grad
    # population std (÷M): [0, 0, 0.25] has std 0.118 (sample std would be 0.144)
    pop = torch.tensor([[[0.0, 0.0, 0.25]]])
    assert ac_pseudo_labels(pop, "std", tau=0.13).tolist() == [[0]]
    assert ac_pseudo_labels(pop, "std", tau=0.11).tolist() == [[1]]
    single = ac_pseudo_labels(torch.tensor([[[0.39], [0.4], [0.55], [0.7], [0.71]]]), single=True, band=(0.4, 0.7))
    assert single.tolist() == [[0, 1, 1, 1, 0]]
    with pytest.raises(ValueError):
        ac_pseudo_labels(a, "median")


def test_focal_loss_by_hand() -> None:
    p = torch.tensor([0.9, 0.2, 0.6])
    y = torch.tensor([1.0, 0.0, 0.0])
    terms = [
        -0.25 * (1 - 0.9) ** 2 * math.log(0.9),
        -0.75 * (1 - 0.8) ** 2 * math.log(0.8),
        -0.75 * (1 - 0.4) ** 2 * math.log(0.4),
    ]
    assert focal_loss(p, y, 2.0, 0.25).item() == pytest.approx(sum(terms) / 3, rel=1e-5)
    # γ = 0 and no α: plain BCE
    assert focal_loss(p, y, 0.0, -1).item() == pytest.approx(F.binary_cross_entropy(p, y).item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------- crops
def test_crop_mask_averaging_ignores_padded_crops() -> None:
    torch.manual_seed(0)
    model = MDVADNet(16, DOMS, head="nullang", hidden=8).eval()
    x = torch.randn(2, 3, 6, 16)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = forward_crops(model, x, mask)
    x2 = x.clone()
    x2[1, 2] = 100.0  # garbage in the padded crop
    out2 = forward_crops(model, x2, mask)
    for k in ("ac", "abn", "nrm"):
        assert torch.allclose(out[k], out2[k])
    direct = model(x[1, :2])
    assert torch.allclose(out["abn"][1], direct["abn"].mean(0), atol=1e-6)
    assert torch.allclose(out["ac"][0], model(x[0])["ac"].mean(0), atol=1e-6)
    # in training the padded crops never reach the network (BatchNorm statistics)
    model.train()
    sizes: list[int] = []
    model.conv_agg.register_forward_pre_hook(lambda mod, inp: sizes.append(inp[0].shape[0]))
    forward_crops(model, x, mask)
    assert sizes == [5]
    with pytest.raises(ValueError):
        forward_crops(model, x, torch.tensor([[True, False, False], [False, False, False]]))


@pytest.mark.parametrize("head", HEADS)
def test_loss_ignores_padded_crop(head: str) -> None:
    torch.manual_seed(0)
    method = get_method(METHOD_OF[head])
    cfg = cfg_with(k=2)
    model = method.build(cfg, DOMS, 16)
    x = torch.randn(4, 2, 8, 16)
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, False]])
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    dom = torch.tensor([0, 1, 2, -1])
    vals = []
    for fill in (0.0, 50.0):
        xx = x.clone()
        xx[~mask] = fill
        torch.manual_seed(1)  # same dropout draws
        loss, logs = method.loss(model, Batch(xx, mask, y, dom), cfg)
        vals.append(loss.item())
        assert set(logs) == {"loss", "mil", "ac", "ac_pos_rate"}
        assert logs["loss"] == pytest.approx(logs["mil"] + 10.0 * logs["ac"], rel=1e-5)
    assert vals[0] == pytest.approx(vals[1], rel=1e-6)
    # AC off: the total is the MIL term only
    cfg_off = cfg_with(k=2, ac=False)
    torch.manual_seed(1)
    loss, logs = method.loss(model, Batch(x, mask, y, dom), cfg_off)
    assert logs["loss"] == pytest.approx(logs["mil"])


def test_adaptation_weighting_changes_abnormal_loss_only_when_adapting() -> None:
    torch.manual_seed(0)
    method = get_method("null-mil")
    cfg = cfg_with(k=2)
    model = method.build(cfg, DOMS, 16).eval()  # eval: no dropout, deterministic
    x = torch.randn(2, 1, 8, 16)
    mask = torch.ones(2, 1, dtype=torch.bool)
    normal = Batch(x, mask, torch.tensor([0.0, 0.0]), torch.tensor([0, 1]))
    abnormal = Batch(x, mask, torch.tensor([1.0, 1.0]), torch.tensor([0, 1]))
    a0 = method.loss(model, abnormal, cfg, adapting=False)[1]["mil"]
    a1 = method.loss(model, abnormal, cfg, adapting=True)[1]["mil"]
    n0 = method.loss(model, normal, cfg, adapting=False)[1]["mil"]
    n1 = method.loss(model, normal, cfg, adapting=True)[1]["mil"]
    assert n0 == pytest.approx(n1)
    assert a1 < a0  # multiplied by s^AC ∈ (0, 1)
    cfg.mdvad.ac_abnormal_weight = "off"
    assert method.loss(model, abnormal, cfg, adapting=True)[1]["mil"] == pytest.approx(a0)


# ---------------------------------------------------------------------------------------------- Null masking
@pytest.mark.parametrize("head", ["null", "nullang"])
def test_null_masking_other_heads_get_no_gradient(head: str) -> None:
    torch.manual_seed(0)
    method = get_method(METHOD_OF[head])
    cfg = cfg_with(k=2)  # AC on: its pseudo-labels read every head, detached
    model = method.build(cfg, DOMS, 16)
    batch = Batch(torch.randn(6, 2, 8, 16), torch.ones(6, 2, dtype=torch.bool), torch.tensor([0.0, 1.0] * 3), torch.zeros(6, dtype=torch.long))
    loss, _ = method.loss(model, batch, cfg)
    loss.backward()
    for d in ("B", "C"):
        for p in model.head_parameters(d):
            assert p.grad is None or torch.count_nonzero(p.grad) == 0
    assert any(torch.count_nonzero(p.grad) > 0 for p in model.head_parameters("A"))
    for shared in (model.conv_agg.weight, model.conv_da.weight, model.fc.weight, model.ac_head[0].weight):
        assert shared.grad is not None and torch.count_nonzero(shared.grad) > 0


# ---------------------------------------------------------------------------------------------- Eq. 5
def _hand_set_model(head: str) -> MDVADNet:
    """F = e_0 for every snippet (fc weight 0, bias e_0), so the heads alone set the scores."""
    model = MDVADNet(16, ["A", "B"], head=head, hidden=4)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        if head == "single":
            model.single_head.weight.zero_()
            model.single_head.bias.fill_(1.0)
        elif head == "null":
            for d, b in (("A", 0.0), ("B", 2.0)):
                model.heads[f"h_{d}"].weight.zero_()
                model.heads[f"h_{d}"].bias.fill_(b)
        else:
            # rows: abnormal, normal; cosines with e_0 are the first entries of the unit vectors
            model.ang_heads["h_A"].copy_(torch.tensor([[0.6, 0.8, 0, 0], [-0.8, 0.6, 0, 0]]))
            model.ang_heads["h_B"].copy_(torch.tensor([[0.2, math.sqrt(0.96), 0, 0], [0.5, math.sqrt(0.75), 0, 0]]))
    return model


@pytest.mark.parametrize(
    "head,expected",
    [
        ("single", {"A": 1 / (1 + math.exp(-1)), "B": 1 / (1 + math.exp(-1)), None: 1 / (1 + math.exp(-1))}),
        ("null", {"A": 0.5, "B": 1 / (1 + math.exp(-2)), None: 1 / (1 + math.exp(-2)), "Z": 1 / (1 + math.exp(-2))}),
        # seen A: 0.6 + 1 + 0.8; seen B: 0.2 + 1 − 0.5; unseen: max a (0.6) + 1 − max n (0.5)
        ("nullang", {"A": 2.4, "B": 0.7, None: 1.1, "Z": 1.1}),
    ],
)
def test_eq5_branches(head: str, expected: dict) -> None:
    model = _hand_set_model(head)
    model.train()
    method = get_method(METHOD_OF[head])
    x = torch.randn(3, 5, 16)  # K=3 crops, T=5
    for target, value in expected.items():
        s = method.score(model, x, target)
        assert s.shape == (5,)
        assert torch.allclose(s, torch.full((5,), value), atol=1e-5), (target, s)
    assert model.training  # mode restored
    s1 = method.score(model, x[0, :, :], "A")  # a single crop (T, C)
    assert s1.shape == (5,)


def test_scores_from_outputs_crop_average_then_max() -> None:
    out = {"abn": torch.tensor([[[0.1, 0.9]]]), "nrm": torch.tensor([[[0.3, -0.2]]])}
    assert scores_from_outputs(out, "nullang", 0).item() == pytest.approx(0.1 + 1 - 0.3)
    assert scores_from_outputs(out, "nullang", -1).item() == pytest.approx(0.9 + 1 - 0.3)
    assert scores_from_outputs(out, "null", 1).item() == pytest.approx(0.9)
    assert scores_from_outputs(out, "null", -1).item() == pytest.approx(0.9)


# ---------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("head", HEADS)
def test_state_dict_round_trip_and_add_domain(head: str) -> None:
    torch.manual_seed(0)
    doms = ["ucf.crime", "XD", "keys"]
    model = MDVADNet(16, doms, head=head, hidden=8, dropout=0.5, ang_scale=4.0)
    model.train()
    model(torch.randn(4, 6, 16))  # move BN running stats
    model.eval()
    x = torch.randn(2, 6, 16)
    ref = model(x)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    rebuilt = MDVADNet.from_state_dict(sd).eval()
    assert rebuilt.domains == doms and rebuilt.head == head and rebuilt.dropout == 0.5 and rebuilt.ang_scale == 4.0
    for k, v in rebuilt(x).items():
        assert torch.allclose(v, ref[k])
    fresh = MDVADNet(16, doms, head=head, hidden=8, dropout=0.5)
    fresh.load_state_dict(sd)
    for k, v in fresh.eval()(x).items():
        assert torch.allclose(v, ref[k])
    wrapped = {f"module.{k}": v for k, v in sd.items()}
    assert MDVADNet.from_state_dict(wrapped).domains == doms
    if head != "single":
        with pytest.raises((ValueError, RuntimeError)):
            MDVADNet(16, ["XD", "ucf.crime", "keys"], head=head, hidden=8).load_state_dict(sd)

    # add_domain(init_from) copies the source head
    model.add_domain("new", init_from="XD")
    assert model.domains == doms + ["new"]
    out = model(x)
    if head == "single":
        assert out["abn"].shape[-1] == 1
    else:
        assert out["abn"].shape[-1] == 4
        assert torch.allclose(out["abn"][..., 3], out["abn"][..., 1])
        src, new = model.head_parameters("XD"), model.head_parameters("new")
        assert all(torch.equal(a, b) and a.data_ptr() != b.data_ptr() for a, b in zip(src, new))
        with torch.no_grad():
            new[0].add_(1.0)
        assert not torch.equal(src[0], new[0])
    model.add_domain("fresh")
    with pytest.raises(ValueError):
        model.add_domain("XD")
    with pytest.raises(ValueError):
        model.add_domain("other", init_from="nope")
    again = MDVADNet.from_state_dict(model.state_dict())
    assert again.domains == doms + ["new", "fresh"]


def test_registry_and_build() -> None:
    assert {"mil", "null-mil", "nullang-mil"} <= set(list_methods())
    cfg = Config()
    cfg.mdvad.hidden = 16
    for head, name in METHOD_OF.items():
        model = get_method(name).build(cfg, ["A", "B"], 32)
        assert isinstance(model, MDVADNet) and model.head == head and model.hidden == 16
    with pytest.raises(ValueError):
        get_method("mil").score(MDVADNet(16, ["A"], head="null"), torch.randn(1, 4, 16), "A")


def test_prepare_target_new_head() -> None:
    torch.manual_seed(0)
    cfg = Config()
    method = get_method("nullang-mil")
    model = method.build(cfg, ["A", "B"], 16)
    x = torch.randn(3, 2, 8, 16)
    assert method.prepare_target(model, "T", cfg, x) is False  # default "max": no new head
    cfg.mdvad.unseen_finetune = "new-head"
    assert method.prepare_target(model, "T", cfg, x) is True
    assert model.domains == ["A", "B", "T"]
    assert method.prepare_target(model, "T", cfg, x) is False


# ---------------------------------------------------------------------------------------------- learning
def _synthetic(n_per_class: int, scene: torch.Tensor, T: int, gen: torch.Generator):
    """Abnormal videos contain 3 snippets shifted along a fixed direction; domain d adds its scene offset scene[d].
    Two crops per video."""
    C = scene.shape[1]
    direction = torch.zeros(C)
    direction[0] = 1.0
    xs, ys, ds = [], [], []
    for d in range(scene.shape[0]):
        for y in (0, 1):
            x = torch.randn(n_per_class, 2, T, C, generator=gen) + scene[d]
            if y:
                for i in range(n_per_class):
                    pos = torch.randperm(T, generator=gen)[:3]
                    x[i, :, pos] += 4.0 * direction
            xs.append(x)
            ys.append(torch.full((n_per_class,), float(y)))
            ds.append(torch.full((n_per_class,), d, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys), torch.cat(ds)


def _pair_auc(scores: torch.Tensor, y: torch.Tensor) -> float:
    pos, neg = scores[y == 1], scores[y == 0]
    return float((pos[:, None] > neg[None, :]).float().mean())


# Measured over OMNIVAD_TEST_SEED 0-5 (tests/README.md): mil and null-mil 0.997-1.000. NullAng-MIL *with* the AC term
# was unstable at this size (0.719-1.000 over seeds 0-9, 0.845-1.000 at 300 steps); without it 0.939-1.000. So
# NullAng-MIL learns here without AC (the AC term is covered by tests/engine/test_learning.py) and keeps a lower bar.
SEPARABLE_BAR = {"mil": 0.9, "null-mil": 0.9, "nullang-mil": 0.85}
SEPARABLE_AC = {"mil": True, "null-mil": True, "nullang-mil": False}


@pytest.mark.learning
@pytest.mark.parametrize("name", ["mil", "null-mil", "nullang-mil"])
def test_learns_separable_synthetic(name: str, claim) -> None:
    seed = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))  # tests/margins.py sweeps it
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    T, C = 16, 16
    cfg = cfg_with(k=3, ac=SEPARABLE_AC[name])
    cfg.mdvad.hidden = 32
    method = get_method(name)
    domains = ["A", "B"]
    model = method.build(cfg, domains, C)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scene = torch.randn(2, C, generator=gen) * 0.5
    xtr, ytr, dtr = _synthetic(24, scene, T, gen)
    for step in range(150):
        idx = torch.randperm(len(ytr), generator=gen)[:24]
        mask = torch.ones(len(idx), 2, dtype=torch.bool)
        mask[::3, 1] = False  # some padded crops
        loss, logs = method.loss(model, Batch(xtr[idx], mask, ytr[idx], dtr[idx]), cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert math.isfinite(logs["loss"])
    xte, yte, dte = _synthetic(12, scene, T, gen)
    for unseen in (False, True):
        video = torch.stack(
            [
                method.score(model, xte[i], None if unseen else domains[int(dte[i])]).topk(3).values.mean()
                for i in range(len(yte))
            ]
        )
        claim(f"video AUC ({'unseen' if unseen else 'seen'} scoring)", _pair_auc(video, yte), ">", SEPARABLE_BAR[name], name)


# ---------------------------------------------------------------------------------------------- issue-17 options
@pytest.mark.parametrize("head", HEADS)
def test_crop_average_inputs_runs_the_network_on_the_crops_mean(head: str) -> None:
    """mdvad.crop_average=inputs: training forward and test scores are the network on the real crops' mean
    feature (padded crops ignored); the default averages the outputs."""
    from omnivad.methods.mdvad.loss import forward_crops

    torch.manual_seed(0)
    cfg = cfg_with()
    cfg.mdvad.crop_average = "inputs"
    method = get_method(METHOD_OF[head])
    model = method.build(cfg, DOMS, 16).eval()
    assert model.crop_average == "inputs" and MDVADNet.from_state_dict(model.state_dict()).crop_average == "inputs"
    x = torch.randn(2, 3, 8, 16)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    with torch.no_grad():
        out = forward_crops(model, x, mask)
        ref0 = model(x[0, :2].mean(0, keepdim=True))
        ref1 = model(x[1].mean(0, keepdim=True))
    assert torch.allclose(out["abn"][0], ref0["abn"][0], atol=1e-6)
    assert torch.allclose(out["abn"][1], ref1["abn"][0], atol=1e-6)
    s = method.score(model, x[1], "A")
    assert torch.allclose(s, scores_from_outputs(ref1, head, 0)[0], atol=1e-6)  # "A" is head 0
    assert torch.allclose(method.scoring_module(model, "A")(x[1]), s, atol=1e-6)


def test_head_dropout_acts_in_training_only() -> None:
    torch.manual_seed(0)
    model = MDVADNet(16, DOMS, head="null", head_dropout=0.5)
    x = torch.randn(4, 8, 16)
    model.eval()
    assert torch.equal(model(x)["abn"], model(x)["abn"])
    model.train()
    assert not torch.equal(model(x)["abn"], model(x)["abn"])
    assert MDVADNet.from_state_dict(model.state_dict()).head_dropout == 0.5


@pytest.mark.parametrize("trunk,out_dim", [("mdvad-k1", 8), ("mdvad-nobn", 8), ("identity", 16)])
def test_ablation_trunks(trunk: str, out_dim: int) -> None:
    model = MDVADNet(16, DOMS, head="null", trunk=trunk)
    assert model.trunk_dim == out_dim
    x = torch.randn(2, 8, 16)
    assert model(x)["abn"].shape == (2, 8, 3)
    if trunk == "mdvad-k1":  # pointwise: a snippet's output does not depend on its neighbours
        y = x.clone()
        y[:, 0] += 1.0
        model.eval()
        assert torch.allclose(model(x)["abn"][:, 1:], model(y)["abn"][:, 1:], atol=1e-6)
    if trunk == "mdvad-nobn":
        assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())


def test_no_ac_loss_skips_the_ac_classifier_but_keeps_its_gradient_defined() -> None:
    torch.manual_seed(0)
    method = get_method("null-mil")
    cfg = cfg_with(ac=False, k=2)
    model = method.build(cfg, DOMS, 16)
    batch = Batch(torch.randn(4, 2, 8, 16), torch.ones(4, 2, dtype=torch.bool), torch.tensor([0.0, 1.0, 0.0, 1.0]),
                  torch.tensor([0, 1, 2, 0]))
    loss, logs = method.loss(model, batch, cfg)
    assert "ac" not in logs and logs["loss"] == pytest.approx(logs["mil"])
    loss.backward()
    for p in model.ac_head.parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) == 0


@pytest.mark.parametrize("head", HEADS)
def test_head_lr_mult_trains_the_heads_at_its_rate_and_the_default_is_the_plain_optimiser(head: str) -> None:
    """mdvad.head_lr_mult (issue 17 ablation): default 1 builds the optimiser over model.parameters() exactly as
    before (same single group, same steps); != 1 puts the heads, and only them, in a group at train.lr * mult."""
    from omnivad.engine.harness import build_optimizer

    name = {"single": "mil", "null": "null-mil", "nullang": "nullang-mil"}[head]
    method = get_method(name)
    cfg = Config()
    cfg.model.method, cfg.train.lr = name, 1e-3
    torch.manual_seed(0)
    model = method.build(cfg, DOMS, 16)
    base = build_optimizer(method.optimizer_params(model, cfg), "adam", cfg.train.lr)
    assert len(base.param_groups) == 1 and base.param_groups[0]["params"] == list(model.parameters())
    assert base.param_groups[0]["lr"] == 1e-3

    cfg.mdvad.head_lr_mult = 10.0
    groups = build_optimizer(method.optimizer_params(model, cfg), "adam", cfg.train.lr).param_groups
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-2)]
    heads = {id(p) for p in groups[1]["params"]}
    assert heads == {id(p) for p in model.all_head_parameters()} and heads
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in model.parameters()}
    assert not heads & ({id(p) for p in model.fc.parameters()} | {id(p) for p in model.ac_head.parameters()})

    # one step: the heads move 10x as far as at the default (Adam's first step is lr * sign), the rest the same
    x = torch.randn(4, 8, 16)
    moved = {}
    for mult in (1.0, 10.0):
        cfg.mdvad.head_lr_mult = mult
        torch.manual_seed(0)
        m = method.build(cfg, DOMS, 16)
        opt = build_optimizer(method.optimizer_params(m, cfg), "adam", cfg.train.lr)
        before = [p.detach().clone() for p in m.all_head_parameters()] + [m.fc.weight.detach().clone()]
        m(x)["abn"].sum().backward()
        opt.step()
        after = list(m.all_head_parameters()) + [m.fc.weight]
        moved[mult] = [float((a.detach() - b).abs().max()) for a, b in zip(after, before)]
    assert moved[10.0][:-1] == pytest.approx([10 * v for v in moved[1.0][:-1]], rel=1e-3)
    assert moved[10.0][-1] == pytest.approx(moved[1.0][-1], rel=1e-6)
