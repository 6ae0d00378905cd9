"""BN-WVAD (spec ``bn_wvad.md``): shapes, parameter counts, the DFM, SBS selection against the spec's worked
numbers, the losses against hand computations and the spec's reference pseudocode, checkpoint interoperability
with the public implementation's key names, and the crop-averaged test score."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from omnivad import config
from omnivad.methods.base import Batch
from omnivad.methods.bn_wvad import BNWVADNet, build_net, dfm, select, selection_counts
from omnivad.methods.bn_wvad.interop import convert_public_state_dict, load_public_state_dict, public_to_omnivad_key
from omnivad.methods.bn_wvad.loss import mpp_loss, normal_loss, sbs_mask
from omnivad.methods.registry import get_method

TINY = ["bn_wvad.embed_dim=32", "bn_wvad.heads=2", "bn_wvad.dim_head=8", "bn_wvad.mlp_dim=16", "bn_wvad.head_ratios=[4,8]"]


def tiny_cfg(*extra: str) -> config.Config:
    return config.load(overrides=[*TINY, *extra])


# ---------------------------------------------------------------------------------------------- shapes, counts
def test_shapes_and_parameter_counts_match_the_spec() -> None:
    """§8: h1 (N,T,32), h2 (N,T,16), p (N,T); §2.2: 1,573,376 + 4,201,472 + 17,057 = 5,791,905 (5,988,513 at 1152-d)."""
    net = get_method("bn-wvad").build(config.Config(), ["XD"], 1024)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net.encoder.embed) == 1_573_376
    assert count(net.encoder.blocks) == 4_201_472
    assert count(net.head) == 17_057
    assert count(net) == 5_791_905
    assert count(get_method("bn-wvad").build(config.Config(), ["XD"], 1152)) == 5_988_513
    out = net(torch.randn(3, 7, 1024))
    assert out["h1"].shape == (3, 7, 32) and out["h2"].shape == (3, 7, 16)
    assert out["p"].shape == (3, 7) and out["dfm1"].shape == (3, 7) and out["dfm2"].shape == (3, 7)
    assert bool(((out["p"] > 0) & (out["p"] < 1)).all())
    assert net.head.bn1.momentum == 0.1 and net.head.bn1.eps == 1e-5
    with pytest.raises(ValueError, match="expected x of shape"):
        net(torch.randn(3, 7, 1000))


# ---------------------------------------------------------------------------------------------- DFM
def test_dfm_against_a_hand_computation() -> None:
    """§2.5: sqrt(Σ (x−μ)²/σ²); x=(3,4), μ=(1,0), σ²=(4,1): sqrt(4/4 + 16/1) = sqrt(17). Table 7 variants too."""
    x, mu, var = torch.tensor([[3.0, 4.0]]), torch.tensor([1.0, 0.0]), torch.tensor([4.0, 1.0])
    assert dfm(x, mu, var).item() == pytest.approx(math.sqrt(17))
    assert dfm(x, mu, var, "euclidean").item() == pytest.approx(math.sqrt(20))
    assert dfm(x, mu, var, "magnitude").item() == pytest.approx(5.0)
    assert dfm(x, mu, var, "cosine").item() == pytest.approx(1 - 3 / 5)
    with pytest.raises(ValueError, match="distance"):
        dfm(x, mu, var, "manhattan")


def test_training_dfm_uses_the_running_statistics_already_updated_by_this_batch() -> None:
    """§2.5 timing: in train mode the head's BN updates μ̂, σ̂² first; the DFM reads the updated buffers."""
    torch.manual_seed(0)
    net = build_net(tiny_cfg(), ["A"], 8)
    before = net.head.bn1.running_mean.clone(), net.head.bn1.running_var.clone()
    out = net(torch.randn(4, 6, 8) * 3 + 1)
    bn = net.head.bn1
    assert not torch.equal(bn.running_mean, before[0])
    h1 = out["h1"].detach()
    mean_b, var_b = h1.reshape(-1, h1.shape[-1]).mean(0), h1.reshape(-1, h1.shape[-1]).var(0, unbiased=True)
    torch.testing.assert_close(bn.running_mean, 0.9 * before[0] + 0.1 * mean_b)  # EMA, α = 0.1
    torch.testing.assert_close(bn.running_var, 0.9 * before[1] + 0.1 * var_b)
    hand = ((h1 - bn.running_mean) ** 2 / bn.running_var).sum(-1).sqrt()
    torch.testing.assert_close(out["dfm1"].detach(), hand)


# ---------------------------------------------------------------------------------------------- selection
def test_selection_counts_match_the_spec_numbers() -> None:
    """§2.6/§8: XD (ρ_s, ρ_b) = (0.2, 0.4): 40 per sample, 5120 per batch; UCF (0.1, 0.2): 20 and 2560."""
    assert selection_counts(64, 200, 0.2, 0.4) == (40, 5120)
    assert selection_counts(64, 200, 0.1, 0.2) == (20, 2560)
    assert selection_counts(64, 200, 0.3, 0.4) == (60, 5120)  # ShanghaiTech
    torch.manual_seed(0)
    c = 3
    for rho_s, rho_b, k_lo, k_hi in ((0.2, 0.4, 5120, 7680), (0.1, 0.2, 2560, 3840)):
        h = torch.randn(128, 200, c)
        d = torch.rand(128, 200)
        xn, xa = select(h[:64], d[:64], h[64:], d[64:], rho_s, rho_b)
        k = xa.shape[0]
        assert k_lo <= k <= k_hi and xn.shape == (k, c)
        # BLS covering SLS: the spec's "sizes seen" K = 5120, k_n = 81 (XD) and K = 2560, k_n = 41 (UCF)
        d_nested = torch.arange(200.0).expand(64, 200) + torch.arange(64.0).view(-1, 1) * 1e-3
        m = sbs_mask(d_nested, rho_s, rho_b)
        assert int(m.sum()) == k_lo and k_lo // 64 + 1 == {5120: 81, 2560: 41}[k_lo]


def test_sbs_on_the_fig4_worked_example_and_the_pairing_order() -> None:
    """Fig. 4: B=4 abnormal videos, T=5, ρ_s=ρ_b=40 %: SLS 2 per video (8), BLS the top 8 of 20, SBS their union.

    Video 0 has many anomalies: SLS misses its 0.8 and 0.7, BLS takes them. Video 1 has faint ones (0.3, 0.4):
    BLS misses them, SLS takes them. K = 10; normals give k_n = ⌊10/4⌋+1 = 3 each, rank-major, cut to 10."""
    d_abn = torch.tensor([
        [0.95, 0.90, 0.80, 0.70, 0.10],
        [0.30, 0.40, 0.05, 0.02, 0.01],
        [0.60, 0.20, 0.85, 0.15, 0.12],
        [0.50, 0.55, 0.11, 0.13, 0.14],
    ])
    sls = torch.zeros(4, 5, dtype=torch.bool)
    for b, ts in enumerate(([0, 1], [0, 1], [0, 2], [0, 1])):
        sls[b, ts] = True
    bls = torch.zeros(4, 5, dtype=torch.bool)
    for b, t in ((0, 0), (0, 1), (2, 2), (0, 2), (0, 3), (2, 0), (3, 1), (3, 0)):
        bls[b, t] = True
    assert torch.equal(sbs_mask(d_abn, 0.4, 0.0), sls)
    assert torch.equal(sbs_mask(d_abn, 0.0, 0.4), bls)
    assert torch.equal(sbs_mask(d_abn, 0.4, 0.4), sls | bls) and int((sls | bls).sum()) == 10
    # features that encode their position: value = 10·b + t (+100 for normals)
    pos = (torch.arange(4.0).view(4, 1) * 10 + torch.arange(5.0)).unsqueeze(-1)  # (4,5,1)
    d_nrm = torch.tensor([[5.0, 4, 3, 2, 1], [1, 2, 3, 4, 5], [3, 5, 1, 4, 2], [2, 1, 5, 3, 4]])
    xn, xa = select(pos + 100, d_nrm, pos, d_abn, 0.4, 0.4)
    assert xa.flatten().tolist() == [0, 1, 2, 3, 10, 11, 20, 22, 30, 31]  # raster order
    # rank-major: every normal's rank-1 snippet, then rank-2, ... (top-3 of each), first 10
    rank = [[0, 4, 1, 2], [1, 3, 3, 4], [2, 2, 0, 3]]  # [rank][sample] → t
    expect = [100 + 10 * b + rank[r][b] for r in range(3) for b in range(4)][:10]
    assert xn.flatten().tolist() == expect


def test_mpp_and_normal_loss_against_hand_computations() -> None:
    """§2.7: MPP = mean max(0, m + DFM(x_n) − DFM(x_a)); L_nor = mean (code) or sum (Eq. 6) of ‖p_b‖₂."""
    mu, var = torch.zeros(2), torch.tensor([1.0, 4.0])
    xn = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # DFM 1, 1
    xa = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # DFM 3, 0.5
    # pair 1: max(0, 1 + 1 − 3) = 0; pair 2: max(0, 1 + 1 − 0.5) = 1.5 → mean 0.75
    assert mpp_loss(xn, xa, mu, var, 1.0).item() == pytest.approx(0.75)
    p = torch.tensor([[0.6, 0.8], [0.0, 0.0], [0.3, 0.4]])
    assert normal_loss(p, "mean").item() == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert normal_loss(p, "sum").item() == pytest.approx(1.5)


def _spec_loss(net: BNWVADNet, x: torch.Tensor, n_normal: int, rho_s: float, rho_b: float) -> torch.Tensor:
    """The spec's §4 reference ``forward_train`` (normals first), written from its pseudocode."""

    def spec_select(h: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, C, T = h.shape
        bn_ = B // 2
        hn, ha = h[:bn_].transpose(1, 2), h[bn_:].transpose(1, 2)
        dn, da = d[:bn_], d[bn_:]
        m_s = torch.zeros_like(da, dtype=torch.bool)
        m_s.scatter_(1, da.topk(int(T * rho_s), dim=1).indices, True)
        m_b = torch.zeros(da.numel(), dtype=torch.bool)
        m_b[da.reshape(-1).topk(int(bn_ * T * rho_b)).indices] = True
        m = m_b | m_s.reshape(-1)
        xa = ha.reshape(-1, C)[m]
        K = int(m.sum())
        idx = dn.topk(K // bn_ + 1, dim=1).indices
        xn = hn.gather(1, idx[..., None].expand(-1, -1, C)).transpose(0, 1).reshape(-1, C)[:K]
        return xn, xa

    spec_dfm = lambda v, mu, var: ((v - mu) ** 2 / var).sum(-1).sqrt()  # noqa: E731
    e = net.encoder(x)
    head = net.head
    h1 = head.conv1(e.transpose(1, 2))
    h2 = head.conv2(F.relu(head.bn1(h1)))
    p = torch.sigmoid(head.conv3(F.relu(head.bn2(h2)))).squeeze(1)
    loss = p[:n_normal].norm(p=2, dim=1).mean()
    for h, bn, lam in ((h1, head.bn1, 5.0), (h2, head.bn2, 20.0)):
        mu, var = bn.running_mean, bn.running_var
        d = spec_dfm(h.transpose(1, 2), mu, var)
        xn, xa = spec_select(h, d.detach())
        loss = loss + lam * F.relu(1.0 + spec_dfm(xn, mu, var) - spec_dfm(xa, mu, var)).mean()
    return loss


def test_method_loss_equals_the_spec_reference_with_crops_as_samples() -> None:
    """The registered method's loss on a (B,K,T,C) batch equals §4's forward_train on its real crops as samples
    (normals first), gradients included; padded crops never reach the network."""
    torch.manual_seed(1)
    cfg = tiny_cfg("bn_wvad.rho_sample=0.2", "bn_wvad.rho_batch=0.4")
    net = build_net(cfg, ["A"], 8)
    ref, fresh = copy.deepcopy(net), copy.deepcopy(net)
    x = torch.randn(4, 2, 10, 8)
    mask = torch.tensor([[True, True], [True, True], [True, True], [True, True]])
    batch = Batch(x=x, mask=mask, y=torch.tensor([0.0, 0.0, 1.0, 1.0]), dom=torch.tensor([-1, -1, -1, -1]))
    loss, logs = get_method("bn-wvad").loss(net, batch, cfg)
    expect = _spec_loss(ref, x.reshape(8, 10, 8), 4, 0.2, 0.4)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    loss.backward()
    expect.backward()
    torch.testing.assert_close(net.encoder.embed.weight.grad, ref.encoder.embed.weight.grad, rtol=1e-4, atol=1e-6)
    assert logs["k1"] >= 16 and set(logs) >= {"nor", "mpp1", "mpp2", "loss"}
    # a padded crop (mask False) changes nothing
    x_pad = torch.cat([x, torch.full((4, 1, 10, 8), 99.0)], 1)
    pad_mask = torch.cat([mask, torch.zeros(4, 1, dtype=torch.bool)], 1)
    loss2, _ = get_method("bn-wvad").loss(fresh, Batch(x_pad, pad_mask, batch.y, batch.dom), cfg)
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-6)


def test_per_domain_ratios_come_from_the_domain_names() -> None:
    """§2.6 per-dataset defaults: an XD batch selects with (0.2, 0.4), a UCFC batch with (0.1, 0.2)."""
    torch.manual_seed(2)
    cfg = tiny_cfg()
    x = torch.randn(8, 1, 20, 8)
    y = torch.tensor([0.0, 0, 0, 0, 1, 1, 1, 1])
    ks = {}
    for name in ("XD", "UCFC"):
        net = build_net(cfg, [name], 8)
        _, logs = get_method("bn-wvad").loss(net, Batch(x, torch.ones(8, 1, dtype=torch.bool), y, torch.zeros(8, dtype=torch.long)), cfg)
        ks[name] = logs["k1"]
    s_xd, b_xd = selection_counts(4, 20, 0.2, 0.4)
    s_ucf, b_ucf = selection_counts(4, 20, 0.1, 0.2)
    assert max(4 * s_xd, b_xd) <= ks["XD"] <= 4 * s_xd + b_xd
    assert max(4 * s_ucf, b_ucf) <= ks["UCFC"] <= 4 * s_ucf + b_ucf and ks["UCFC"] < ks["XD"]
    # rho_sample/rho_batch, when set, apply to every domain (what a search over the ratios needs)
    fixed = tiny_cfg("bn_wvad.rho_sample=0.2", "bn_wvad.rho_batch=0.4")
    net = build_net(fixed, ["UCFC"], 8)
    _, logs = get_method("bn-wvad").loss(net, Batch(x, torch.ones(8, 1, dtype=torch.bool), y, torch.zeros(8, dtype=torch.long)), fixed)
    assert max(4 * s_xd, b_xd) <= logs["k1"] <= 4 * s_xd + b_xd


# ---------------------------------------------------------------------------------------------- scoring
def test_score_averages_the_product_over_crops_and_round_trips_a_checkpoint() -> None:
    """§2.8: per crop p·(DFM1+DFM2) with the running statistics (eval mode), then the mean over crops."""
    torch.manual_seed(3)
    cfg = tiny_cfg()
    method = get_method("bn-wvad")
    net = method.build(cfg, ["A", "B"], 8)
    for _ in range(3):  # move the running statistics away from (0, 1)
        net(torch.randn(6, 9, 8) * 2 + 0.5)
    x = torch.randn(3, 9, 8)
    s = method.score(net, x, "A")
    assert net.training  # mode restored
    net.eval()
    with torch.no_grad():
        out = net(x)
    per_crop = out["p"] * (out["dfm1"] + out["dfm2"])
    torch.testing.assert_close(s, per_crop.mean(0))
    assert not torch.allclose(s, out["p"].mean(0) * (out["dfm1"] + out["dfm2"]).mean(0))
    again = method.build(cfg, ["A", "B"], 8)
    again.load_state_dict(net.state_dict())
    torch.testing.assert_close(method.score(again, x, None), s)
    assert again.domains == ["A", "B"]
    with pytest.raises(ValueError, match="embed_dim"):
        method.build(tiny_cfg("bn_wvad.embed_dim=64"), ["A"], 8).load_state_dict(net.state_dict())


# ---------------------------------------------------------------------------------------------- interop
def public_state_dict(feature_dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the public implementation's key names and shapes (cool-xuan/BN-WVAD models/model.py:
    WSAD(embedding=Temporal, selfatt=Transformer(512, 2, 4, 128, 512), normal_head=NormalHead(512, [16, 32]))),
    random values, positive running variances."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=0.05: torch.randn(*s, generator=g) * scale  # noqa: E731
    sd = {"embedding.conv_1.0.weight": r(512, feature_dim, 3), "embedding.conv_1.0.bias": r(512)}
    for i in range(2):
        a, f = f"selfatt.layers.{i}.0", f"selfatt.layers.{i}.1"
        sd |= {
            f"{a}.norm.weight": 1 + r(512), f"{a}.norm.bias": r(512), f"{a}.fn.to_qkv.weight": r(2048, 512),
            f"{a}.fn.to_out.0.weight": r(512, 1024), f"{a}.fn.to_out.0.bias": r(512),
            f"{f}.norm.weight": 1 + r(512), f"{f}.norm.bias": r(512), f"{f}.fn.net.0.weight": r(512, 512),
            f"{f}.fn.net.0.bias": r(512), f"{f}.fn.net.3.weight": r(512, 512), f"{f}.fn.net.3.bias": r(512),
        }
    for name, (co, ci) in {"conv1": (32, 512), "conv2": (16, 32), "conv3": (1, 16)}.items():
        sd[f"normal_head.{name}.weight"] = r(co, ci, 1, scale=0.2)
        sd[f"normal_head.{name}.bias"] = r(co)
    for name, c in {"bn1": 32, "bn2": 16}.items():
        sd |= {
            f"normal_head.{name}.weight": 1 + r(c), f"normal_head.{name}.bias": r(c),
            f"normal_head.{name}.running_mean": r(c, scale=0.3),
            f"normal_head.{name}.running_var": 0.5 + torch.rand(c, generator=g),
            f"normal_head.{name}.num_batches_tracked": torch.tensor(900),
        }
    return sd


def spec_scores(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """§2.2–§2.8 written directly from the spec's equations on the public tensors: x (crops, T, C) → (T,)."""
    n, t, _ = x.shape
    e = torch.relu(F.conv1d(x.transpose(1, 2), sd["embedding.conv_1.0.weight"], sd["embedding.conv_1.0.bias"], padding=1))
    e = e.transpose(1, 2)  # (n, T, 512)
    idx = torch.arange(1, t + 1, dtype=torch.float32)
    G = torch.exp(-(idx.view(1, -1) - idx.view(-1, 1)).abs() / math.e)
    A2 = G / G.sum(-1)  # entry (i, j) divided by the sum of row j
    for i in range(2):
        a, f = f"selfatt.layers.{i}.0", f"selfatt.layers.{i}.1"
        z = F.layer_norm(e, (512,), sd[f"{a}.norm.weight"], sd[f"{a}.norm.bias"])
        q, k, v, tt = (c.reshape(n, t, 4, 128).permute(0, 2, 1, 3) for c in (z @ sd[f"{a}.fn.to_qkv.weight"].T).chunk(4, -1))
        A1 = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(128), -1)
        heads = torch.cat([A1 @ v, A2 @ tt], -1)  # (n, 4, T, 256)
        merged = heads.permute(0, 2, 1, 3).reshape(n, t, 1024)
        e = merged @ sd[f"{a}.fn.to_out.0.weight"].T + sd[f"{a}.fn.to_out.0.bias"] + e
        z = F.layer_norm(e, (512,), sd[f"{f}.norm.weight"], sd[f"{f}.norm.bias"])
        ff = F.gelu(z @ sd[f"{f}.fn.net.0.weight"].T + sd[f"{f}.fn.net.0.bias"])
        e = ff @ sd[f"{f}.fn.net.3.weight"].T + sd[f"{f}.fn.net.3.bias"] + e

    def bn_eval(h: torch.Tensor, name: str) -> torch.Tensor:
        mu, var = sd[f"normal_head.{name}.running_mean"], sd[f"normal_head.{name}.running_var"]
        return (h - mu) / torch.sqrt(var + 1e-5) * sd[f"normal_head.{name}.weight"] + sd[f"normal_head.{name}.bias"]

    lin = lambda h, name: h @ sd[f"normal_head.{name}.weight"][..., 0].T + sd[f"normal_head.{name}.bias"]  # noqa: E731
    h1 = lin(e, "conv1")
    h2 = lin(torch.relu(bn_eval(h1, "bn1")), "conv2")
    p = torch.sigmoid(lin(torch.relu(bn_eval(h2, "bn2")), "conv3"))[..., 0]

    def mahalanobis(h: torch.Tensor, name: str) -> torch.Tensor:
        mu, var = sd[f"normal_head.{name}.running_mean"], sd[f"normal_head.{name}.running_var"]
        return torch.sqrt(((h - mu) ** 2 / var).sum(-1))

    return (p * (mahalanobis(h1, "bn1") + mahalanobis(h2, "bn2"))).mean(0)


def test_public_checkpoint_loads_and_scores_like_the_spec_forward(tmp_path) -> None:
    """Interop: a state dict with the public key names and shapes loads (strictly, every key mapped) and scores
    exactly like the spec's equations evaluated on the public tensors; also through a saved ``.pkl`` file."""
    feature_dim = 40
    sd = public_state_dict(feature_dim)
    assert public_to_omnivad_key("selfatt.layers.1.0.fn.to_out.0.weight") == "encoder.blocks.1.attn.to_out.weight"
    assert public_to_omnivad_key("module.normal_head.bn2.running_var") == "head.bn2.running_var"
    with pytest.raises(KeyError, match="unexpected key"):
        public_to_omnivad_key("memory.Amemory.weight")
    own = convert_public_state_dict(sd)
    assert len(own) == len(sd)
    net = load_public_state_dict(sd, domains=["XD"])
    assert sum(p.numel() for p in net.parameters()) == 5_791_905 - 1024 * 512 * 3 + feature_dim * 512 * 3
    x = torch.randn(5, 23, feature_dim)  # 5 crops (XD), full length
    expect = spec_scores(sd, x)
    got = get_method("bn-wvad").score(net, x, "XD")
    torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-5)
    path = tmp_path / "xd_best.pkl"
    torch.save(sd, path)
    from omnivad.methods.bn_wvad.interop import load_public_checkpoint

    torch.testing.assert_close(get_method("bn-wvad").score(load_public_checkpoint(str(path)), x, None), got)
    bad = dict(sd)
    bad.pop("normal_head.bn1.running_var")
    with pytest.raises(RuntimeError, match="running_var"):
        load_public_state_dict(bad)
