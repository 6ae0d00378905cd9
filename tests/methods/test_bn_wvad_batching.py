"""BN-WVAD's ``bn_wvad.batching=crop_samples`` (spec bn_wvad.md §1.3, §3): 64 normal + 64 abnormal (video, crop)
samples a step drawn from the step's videos, as the public code's per-crop file lists do, instead of every crop of
every video (``videos``, the default)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from omnivad import config
from omnivad.methods.base import Batch
from omnivad.methods.bn_wvad import build_net
from omnivad.methods.bn_wvad.loss import bn_wvad_loss, crop_sample_batch

TINY = ["bn_wvad.embed_dim=16", "bn_wvad.heads=2", "bn_wvad.dim_head=4", "bn_wvad.mlp_dim=8", "bn_wvad.head_ratios=[2,4]"]
T, C = 8, 6


def _batch(n_per_class: int, k: int, mask_out: tuple[int, int] | None = None) -> Batch:
    """Videos 0..n-1 normal, n..2n-1 abnormal; feature 0 = video index, feature 1 = crop index (who is who)."""
    b = 2 * n_per_class
    x = torch.randn(b, k, T, C)
    x[..., 0] = torch.arange(b, dtype=torch.float32).view(-1, 1, 1)
    x[..., 1] = torch.arange(k, dtype=torch.float32).view(1, -1, 1)
    mask = torch.ones(b, k, dtype=torch.bool)
    if mask_out is not None:
        mask[mask_out] = False
    y = torch.tensor([0.0] * n_per_class + [1.0] * n_per_class)
    return Batch(x, mask, y, torch.zeros(b, dtype=torch.int64))


def _who(x: torch.Tensor) -> list[tuple[int, int]]:
    return [(int(v), int(c)) for v, c in x[:, 0, :2].tolist()]


def test_samples_are_real_crops_normal_first_one_per_video_when_enough_videos() -> None:
    torch.manual_seed(0)
    batch = _batch(n_per_class=5, k=4, mask_out=(1, 2))
    x, y, dom = crop_sample_batch(batch, per_class=5)
    assert x.shape == (10, T, C) and y.tolist() == [0.0] * 5 + [1.0] * 5 and dom.shape == (10,)
    who = _who(x)
    for (v, c), row in zip(who, x):
        assert torch.equal(row, batch.x[v, c])  # a real (video, crop) of the batch
        assert bool(batch.mask[v, c])  # never a padded crop
    assert sorted(v for v, _ in who[:5]) == [0, 1, 2, 3, 4]  # every normal video once
    assert sorted(v for v, _ in who[5:]) == [5, 6, 7, 8, 9]  # every abnormal video once


def test_more_samples_than_videos_spread_over_videos_without_repeats() -> None:
    torch.manual_seed(1)
    x, y, _ = crop_sample_batch(_batch(n_per_class=3, k=5), per_class=7)
    who = _who(x)
    assert len(who) == 14 and len(set(who)) == 14  # no (video, crop) twice
    per_video = Counter(v for v, _ in who[:7])
    assert sorted(per_video.values()) == [2, 2, 3]  # round-robin over videos: 3 + 3 + 1


def test_a_class_with_fewer_crops_gives_all_of_them() -> None:
    x, y, _ = crop_sample_batch(_batch(n_per_class=2, k=2), per_class=64)
    assert x.shape[0] == 8 and y.tolist() == [0.0] * 4 + [1.0] * 4


def test_the_loss_selects_over_the_drawn_samples_not_every_crop() -> None:
    """BLS count ⌊ρ_b·B_a·T⌋ (§2.6) with ρ_s = 0: B_a is the drawn abnormal samples (4), not videos × crops (4 × 3)."""
    torch.manual_seed(0)
    batch = _batch(n_per_class=4, k=3)
    counts = {}
    for mode, expected in (("videos", int(12 * T * 0.5)), ("crop_samples", int(4 * T * 0.5))):
        cfg = config.load(overrides=[*TINY, f"bn_wvad.batching={mode}", "bn_wvad.samples_per_class=4",
                                     "bn_wvad.rho_sample=0", "bn_wvad.rho_batch=0.5"])
        net = build_net(cfg, ["A"], C)
        seen = []
        net.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
        loss, logs = bn_wvad_loss(net, net, batch, cfg)
        loss.backward()
        counts[mode] = logs["k1"]
        assert logs["k1"] == expected
        assert seen[0] == ((24 if mode == "videos" else 8), T, C)
    assert counts["crop_samples"] < counts["videos"]


def test_default_and_validation() -> None:
    c = config.load().bn_wvad
    assert c.batching == "videos" and c.samples_per_class == 64
    with pytest.raises(Exception, match="bn_wvad.batching"):
        config.load(overrides=["bn_wvad.batching=crops"])
