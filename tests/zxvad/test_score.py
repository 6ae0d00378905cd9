"""PSNR scoring, per-video normalisation, frame AUC, and the losses against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from omnivad.zxvad import loss as L
from omnivad.zxvad.data import ClipSampler, ZxVADDataError, frame_labels, read_annotations, to_tensor
from omnivad.zxvad.score import frame_auc, psnr, regularity


def test_psnr_on_the_01_scale_by_hand():
    pred = torch.zeros(2, 3, 4, 4)  # 0.5 on [0, 1]
    target = torch.stack([torch.full((3, 4, 4), 0.5), torch.zeros(3, 4, 4)])  # 0.75 and 0.5
    p = psnr(pred, target)
    assert p[0].item() == pytest.approx(10 * math.log10(1 / 0.0625), rel=1e-6)  # 12.04 dB
    assert p[1].item() == pytest.approx(100.0)  # MSE 0 clamps at 1e-10


def test_per_video_minmax_normalisation():
    assert np.allclose(regularity(np.array([10.0, 20.0, 15.0])), [0.0, 1.0, 0.5])
    assert np.allclose(regularity(np.array([7.0, 7.0])), [0.0, 0.0])  # constant PSNR -> S = 0
    assert np.allclose(regularity(np.array([10.0, 20.0]), per_video_norm=False), [10.0, 20.0])


def test_frame_auc_drops_first_frames_and_pools_videos():
    # video A: frames 0..5, first 2 dropped, PSNR of frames 2..5; abnormal frames 4, 5 have low PSNR
    psnrs = [np.array([30.0, 31.0, 20.0, 21.0]), np.array([25.0, 26.0, 24.0])]
    labels = [np.array([1, 1, 0, 0, 1, 1]), np.array([0, 0, 0, 1, 0])]
    r = frame_auc(psnrs, labels, drop_first=2)
    # anomaly scores: A 1-[0.9,1,0,0.1] = [0.1,0,1,0.9]; B 1-[0.5,1,0] = [0.5,0,1]
    # positives {1.0, 0.9, 0.0(B frame 3 -> score 0)} vs negatives {0.1, 0, 0.5, 1.0}
    from sklearn.metrics import roc_auc_score

    expected = roc_auc_score([0, 0, 1, 1, 0, 1, 0], [0.1, 0.0, 1.0, 0.9, 0.5, 0.0, 1.0])
    assert r["auc"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="video 1"):
        frame_auc(psnrs, [labels[0], labels[1][:-1]], drop_first=2)


def test_losses_by_hand():
    s_p, s_t = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert L.normalcy_loss(s_p, s_t).item() == pytest.approx(0.5 * 0.5 + 0.5 * 2.0)
    # mean s_t = 1, mean s_p = 0.5: 1/2 mean((s_p - 2)^2) + 1/2 mean((s_t + 0.5)^2)
    assert L.relative_normalcy_loss(s_p, s_t).item() == pytest.approx(0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 6.25) / 2)
    a_p, a_t = torch.ones(1, 2, 2), torch.zeros(1, 2, 2)
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1  # area-resized to 2x2: top-left 1, else 0
    assert L.attention_affirmation_loss(a_p, a_t, mask).item() == pytest.approx(0.5 * 0.25)
    x = torch.rand(1, 3, 16, 16)
    assert L.ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert L.ssim(x, 1 - x).item() < 0.5
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    assert L.gradient_loss(ramp, torch.zeros_like(ramp)).item() == pytest.approx(1.0)  # |dx| = 1, dy = 0
    assert L.memory_entropy(torch.full((3, 8), 1 / 8)).item() == pytest.approx(math.log(8), rel=1e-5)


def test_augment_keeps_range_and_differs_per_image():
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = L.augment(torch.cat([x[:1]] * 3), torch.Generator().manual_seed(0))
    assert y.shape == (3, 3, 16, 16) and y.min() >= -1 and y.max() <= 1
    assert not torch.allclose(y[0], y[1])  # an independent draw per image
    y2 = L.augment(x, torch.Generator().manual_seed(0), preset="kornia-doc")
    assert torch.isfinite(y2).all()


def test_clip_sampler_is_replayable_and_picks_foreign_donors():
    videos = [np.full((6, 4, 4, 1), 10 * i, np.uint8) for i in range(3)]
    s = ClipSampler(videos, None, clip_len=4, batch_size=16, seed=3)
    a, b = s.batch(5), s.batch(5)
    assert torch.equal(a.clips, b.clips) and torch.equal(a.donors, b.donors)
    assert a.clips.shape == (16, 5, 3, 4, 4)
    clip_video = a.clips[:, 0, 0, 0, 0]
    assert (a.donors[:, 0, 0, 0] != clip_video).all()  # another video's frame (A5)
    assert torch.allclose(to_tensor(videos[1][:1])[0, :, 0, 0], torch.full((3,), 10 / 127.5 - 1))
    with pytest.raises(ZxVADDataError, match="shorter"):
        ClipSampler([np.zeros((3, 4, 4, 3), np.uint8)], None, 4, 2)


def test_annotations(tmp_path):
    (tmp_path / "annotations.txt").write_text("b.mp4 fast 2 3 6 6\n\nc.mp4 shape 0 0\n")
    ann = read_annotations(str(tmp_path))
    assert ann == {"b.mp4": [(2, 4), (6, 7)], "c.mp4": [(0, 1)]}
    assert frame_labels(8, ann["b.mp4"]).tolist() == [0, 0, 1, 1, 0, 0, 1, 0]
    (tmp_path / "annotations.txt").write_text("b.mp4 fast 2\n")
    with pytest.raises(ZxVADDataError, match="annotations.txt:1"):
        read_annotations(str(tmp_path))
