"""MMIL (Sultani et al. CVPR'18 ranking loss with smoothness and sparsity): shapes, parameter count, the loss
against a hand computation, pairing, crop handling and errors."""

from __future__ import annotations

import os

import pytest
import torch

from omnivad import config
from omnivad.methods.base import Batch
from omnivad.methods.mmil import mmil_loss
from omnivad.methods.registry import get_method


def test_shapes_and_parameter_count() -> None:
    """C=4096 (C3D, the paper's input): 4096·512+512 + 512·32+32 + 32+1 = 2,114,113 parameters."""
    net = get_method("mmil").build(config.Config(), ["A"], 4096)
    assert sum(p.numel() for p in net.parameters()) == 4096 * 512 + 512 + 512 * 32 + 32 + 32 + 1 == 2_114_113
    s = net.eval()(torch.randn(3, 32, 4096))
    assert s.shape == (3, 32) and bool(((s > 0) & (s < 1)).all())
    with pytest.raises(ValueError, match="expected x of shape"):
        net(torch.randn(3, 32, 1024))


def test_ranking_loss_against_a_hand_computation() -> None:
    """Eq. 6: max(0, 1 − max s_a + max s_n) + λ1 Σ(s_a,t − s_a,t+1)² + λ2 Σ s_a,t, averaged over pairs."""
    s = torch.tensor([
        [0.1, 0.2, 0.1],  # normal, domain 0 (max 0.2)
        [0.2, 0.9, 0.4],  # abnormal, domain 0 (max 0.9)
        [0.5, 0.3, 0.3],  # normal, domain 1 (max 0.5)
        [0.4, 0.4, 0.6],  # abnormal, domain 1 (max 0.6)
    ])
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    dom = torch.tensor([0, 0, 1, 1])
    hinge = [max(0.0, 1 - 0.9 + 0.2), max(0.0, 1 - 0.6 + 0.5)]  # 0.3, 0.9
    smooth = [0.7**2 + 0.5**2, 0.0 + 0.2**2]
    sparse = [1.5, 1.4]
    l1, l2 = 0.1, 0.01
    expect = sum(hinge) / 2 + l1 * sum(smooth) / 2 + l2 * sum(sparse) / 2
    total, logs = mmil_loss(s, y, dom, 1.0, l1, l2)
    assert total.item() == pytest.approx(expect, rel=1e-6)
    assert logs["rank"] == pytest.approx(0.6, rel=1e-6)
    # all-pairs across one domain: 2 abnormal × 2 normal
    dom1 = torch.zeros(4, dtype=torch.long)
    all_pairs, _ = mmil_loss(s, y, dom1, 1.0, 0.0, 0.0, "all-pairs")
    maxes = {0: 0.2, 1: 0.9, 2: 0.5, 3: 0.6}
    hand = [max(0.0, 1 - maxes[a] + maxes[n]) for a in (1, 3) for n in (0, 2)]
    assert all_pairs.item() == pytest.approx(sum(hand) / 4, rel=1e-6)
    with pytest.raises(ValueError, match="same domain"):
        mmil_loss(s, y, torch.tensor([0, 1, 2, 3]))


@pytest.mark.learning
def test_method_loss_averages_scores_over_real_crops_and_learns_the_ranking(claim) -> None:
    """Scores are averaged over each video's real crops (padding ignored); Adam steps on a planted event (dim 0,
    snippets 3-4 of the abnormal videos) lift the event above every other snippet of held-out abnormal videos."""
    torch.manual_seed(int(os.environ.get("OMNIVAD_TEST_SEED", "0")))  # tests/margins.py sweeps it
    cfg = config.load(overrides=["mmil.dropout=0"])
    method = get_method("mmil")
    net = method.build(cfg, ["A"], 6)

    def videos(n: int) -> torch.Tensor:
        x = torch.randn(2 * n, 3, 8, 6) * 0.5
        x[n:, :, 3:5, 0] += 3.0
        return x

    x = videos(8)
    mask = torch.tensor([[True, True, False]] * 16)
    y = torch.tensor([0.0] * 8 + [1.0] * 8)
    batch = Batch(x, mask, y, torch.zeros(16, dtype=torch.long))
    loss, _ = method.loss(net, batch, cfg)
    with torch.no_grad():
        s = net(x[:, :2].reshape(32, 8, 6)).reshape(16, 2, 8).mean(1)
    expect, logs0 = mmil_loss(s, y, batch.dom, cfg.mmil.rank_margin, cfg.mmil.lambda_smooth, cfg.mmil.lambda_sparse)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-6)
    # A fresh batch every step, as the platform's sampler draws them. Repeating the one batch above instead got stuck
    # for 1 of 12 seeds (OMNIVAD_TEST_SEED=4: ranking loss 0.56 after 60 and after 150 steps, the event scored below
    # the background) at lr 1e-3 and 3e-3 alike; with fresh batches all 12 learn (tests/README.md).
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        loss, logs = method.loss(net, Batch(videos(8), mask, y, batch.dom), cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs0["rank"] > 0.9
    claim("ranking loss after 60 steps", logs["rank"], "<", 0.5)
    gaps = []
    for v in videos(4)[4:]:
        score = method.score(net, v, None)
        assert score.shape == (8,)
        gaps.append(float(score[3:5].min() - score[[0, 1, 2, 5, 6, 7]].max()))
    claim("min over held-out abnormal videos: event min − background max", min(gaps), ">", 0.0, str(gaps))
