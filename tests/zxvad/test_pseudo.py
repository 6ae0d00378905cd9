"""Pseudo-anomaly synthesis O: the random CNN finds the object, boxes lie in the frame, the paste
changes only the masked pixels inside the box (spec §3, §12.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnivad.zxvad.pseudo import PseudoAnomaly, RandomResNet, object_mask, sample_box


def _object_frame(size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat grey frame with a textured square object; returns (frame (1, 3, H, W), object mask)."""
    rng = np.random.default_rng(0)
    x = np.zeros((3, size, size), np.float32)
    obj = np.zeros((size, size), bool)
    obj[16:48, 32:64] = True
    x[:, obj] = rng.uniform(-1, 1, (3, int(obj.sum())))
    return torch.from_numpy(x)[None], torch.from_numpy(obj)


def test_random_cnn_mask_covers_the_object_more_than_the_background():
    x, obj = _object_frame()
    r = RandomResNet("resnet50", "layer2", seed=0)  # 128x128 -> 16x16 map
    m = object_mask(r, x, threshold=0.1)[0, 0].bool()
    assert m.shape == obj.shape
    inside, outside = m[obj].float().mean().item(), m[~obj].float().mean().item()
    assert inside > 0.9 and outside < 0.5, (inside, outside)
    assert not any(p.requires_grad for p in r.parameters())
    r.train()
    assert not r.training  # R stays frozen in eval mode


def test_boxes_are_inside_the_frame_and_not_empty():
    gen = torch.Generator().manual_seed(0)
    sides = []
    for _ in range(300):
        b1, b2, b3, b4 = sample_box(40, 30, gen)
        assert 0 <= b1 < b2 <= 30 and 0 <= b3 < b4 <= 40
        sides.append((b2 - b1) / 30)
    assert 0.4 < float(np.mean(sides)) < 0.75  # clipped CutMix boxes: about 2/3 of the side before clipping


@pytest.mark.parametrize("mix", ["object", "cutmix"])
def test_paste_changes_only_masked_pixels(mix):
    o = PseudoAnomaly("resnet50", "layer2", mix=mix, seed=0)
    base = torch.full((4, 3, 32, 32), -0.5)
    donor = torch.rand(4, 3, 32, 32) * 2 - 1
    v, m = o(base, donor, torch.Generator().manual_seed(1))
    assert v.shape == base.shape and m.shape == (4, 1, 32, 32)
    assert set(torch.unique(m).tolist()) <= {0.0, 1.0} and m.sum() > 0
    assert torch.equal((v - base) * (1 - m), torch.zeros_like(v))  # spec §12.3
    changed = (v != base).any(1, keepdim=True)
    assert bool((changed <= m.bool()).all())
    if mix == "cutmix":  # the whole box: M~ is one rectangle per image
        for i in range(4):
            ys, xs = torch.nonzero(m[i, 0], as_tuple=True)
            assert m[i, 0, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()


def test_mixup_blends_globally():
    o = PseudoAnomaly(mix="mixup")
    base, donor = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    v, m = o(base, donor, torch.Generator().manual_seed(0))
    assert torch.allclose(v, m.expand_as(v))  # beta * 1 + (1 - beta) * 0
    assert o.r is None
