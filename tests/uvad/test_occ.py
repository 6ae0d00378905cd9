"""wOCC models: exact flow likelihoods, weighting, STG-NF training on generated poses, the pose importer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from omnivad.config import UVADConfig
from omnivad.corpus.format import Video, write_videos
from omnivad.corpus.poses import coco17_to_coco18, import_poses, pose_windows, read_poses
from omnivad.errors import CorpusError
from omnivad.uvad.occ import STGNF, FeatureAE, FeatureFlow
from omnivad.uvad.train import ObjectLoss, data_init, occ_epochs, score_objects


def _perturb(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def test_feature_flow_density_integrates_to_one():
    torch.manual_seed(0)
    flow = FeatureFlow(2, hidden=8, steps=3)
    data_init(flow, np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32), 64)
    _perturb(flow, 1)
    flow.eval()
    step = 0.05
    g = torch.arange(-12, 12, step)
    xy = torch.cartesian_prod(g, g)
    with torch.no_grad():
        density = torch.exp(-flow.object_loss(xy) * math.log(2) * 2)  # bits/dim → nats over D=2
    assert float(density.sum() * step * step) == pytest.approx(1.0, abs=0.02)


def test_stgnf_logdet_matches_the_jacobian():
    torch.manual_seed(0)
    model = STGNF(seg_len=4, steps=3, hidden=4)
    data_init(model, np.random.default_rng(0).normal(size=(8, 2, 4, 18)).astype(np.float32), 8)
    _perturb(model, 2)
    model.eval()
    x = torch.randn(1, 2, 4, 18)
    z, logdet = model(x)
    assert z.shape == x.shape
    jac = torch.autograd.functional.jacobian(lambda v: model(v.view(1, 2, 4, 18))[0].flatten(), x.flatten())
    assert float(logdet.detach()) == pytest.approx(float(torch.linalg.slogdet(jac)[1]), rel=1e-4, abs=1e-3)
    nll = model.object_loss(x)
    hand = -(-0.5 * ((z - 3.0) ** 2 + math.log(2 * math.pi)).sum() + logdet) / (math.log(2) * x.numel())
    assert float(nll) == pytest.approx(float(hand), rel=1e-5)


_TEMPLATE = np.random.default_rng(123).normal(0, 30, size=(17, 2))  # one body shape (pixels)


def _skeleton_track(rng: np.random.Generator, frames: int, unusual: bool) -> np.ndarray:
    """(frames, 17, 3) pixels: a person swaying slowly, or (unusual) also waving both arms fast sideways."""
    base = rng.uniform(200, 600, size=2) + _TEMPLATE + rng.normal(0, 2, size=(17, 2))
    t = np.arange(frames)
    xy = base[None] + 5 * np.sin(0.2 * t[:, None, None] + np.arange(17)[None, :, None])
    if unusual:
        xy[:, [7, 8, 9, 10], 0] += 80 * np.sin(1.5 * t)[:, None]  # elbows and wrists
    return np.concatenate([xy, np.ones((frames, 17, 1))], axis=2).astype(np.float32)


def test_stgnf_trains_and_separates_unusual_motion():
    rng = np.random.default_rng(0)
    cfg = UVADConfig(seg_len=8, occ_batch=64, occ_epochs=6, occ_lr=5e-3)
    normal = np.concatenate([pose_windows({0: (np.arange(40), _skeleton_track(rng, 40, False))}, 8, 2, cfg.resolution)[0]
                             for _ in range(12)])
    odd = np.concatenate([pose_windows({0: (np.arange(24), _skeleton_track(rng, 24, True))}, 8, 8, cfg.resolution)[0]
                          for _ in range(4)])
    torch.manual_seed(0)
    model = STGNF(seg_len=8, steps=4, hidden=8)
    data_init(model, normal, 64)
    losses = occ_epochs(ObjectLoss(model), torch.optim.Adamax(model.parameters(), lr=5e-3), normal,
                        np.zeros(len(normal), np.float32), cfg, seed=0)
    assert np.mean(losses[-3:]) < losses[0] - 1.0
    assert score_objects(model, odd).min() > score_objects(model, normal).max()


def test_weighted_ae_ignores_objects_labelled_abnormal():
    """Eq. 2: a cluster with w = 1 gets no weight, so the AE reconstructs it worse than with w = 0."""
    rng = np.random.default_rng(0)
    common = rng.normal(0, 1, size=(400, 8)) * np.r_[np.ones(4), np.zeros(4) + 0.05]
    rare = np.r_[np.zeros(4), np.full(4, 2.0)] + rng.normal(0, 0.1, size=(150, 8))  # an off-manifold cluster
    x = np.concatenate([common, rare]).astype(np.float32)
    cfg = UVADConfig(occ_batch=64, occ_epochs=15, occ_lr=5e-3)

    def rare_error(w_rare: float) -> float:
        torch.manual_seed(0)
        ae = FeatureAE(8, hidden=8)
        w = np.r_[np.zeros(400), np.full(150, w_rare)].astype(np.float32)
        occ_epochs(ObjectLoss(ae), torch.optim.Adamax(ae.parameters(), lr=5e-3), x, w, cfg, seed=0)
        return float(score_objects(ae, x[400:]).mean())

    hi, lo = rare_error(1.0), rare_error(0.0)
    assert hi > 3 * lo


def test_alphapose_import_round_trip(tmp_path):
    uri = str(tmp_path / "corpus")
    vids = [Video(video_id=f"v{i}", domain="cam", split="train", label=0, features=np.zeros((3, 1, 4), np.float32))
            for i in range(2)]
    write_videos(uri, vids, feature_dim=4)
    rng = np.random.default_rng(0)
    sent: dict[tuple[str, int, int], np.ndarray] = {}
    files = {}
    for vid in ("v0", "v1"):
        dets = []
        for person in (1, 4):
            for frame in range(5):
                kp = rng.uniform(0, 800, size=(17, 3)).astype(np.float32)
                sent[(vid, person, frame)] = kp
                dets.append({"image_id": f"{frame:06d}.jpg", "category_id": 1, "keypoints": kp.ravel().tolist(),
                             "score": 2.5, "idx": person})
        path = tmp_path / f"{vid}.json"
        path.write_text(json.dumps(dets[::-1]))  # any order
        files[vid] = str(path)
    assert import_poses(uri, "cam", "train", files) == 20
    back = read_poses(uri, "cam", "train")
    assert sorted(back) == ["v0", "v1"] and sorted(back["v1"]) == [1, 4]
    frames, kp = back["v0"][4]
    assert frames.tolist() == list(range(5))
    for f in range(5):
        np.testing.assert_allclose(kp[f], sent[("v0", 4, f)], rtol=1e-6)
    c18 = coco17_to_coco18(kp)
    np.testing.assert_allclose(c18[:, 1], (kp[:, 5] + kp[:, 6]) / 2, rtol=1e-6)  # the neck
    np.testing.assert_allclose(c18[:, 2], kp[:, 6])  # right shoulder
    with pytest.raises(CorpusError, match="video 'nope' is not in cam/train"):
        import_poses(uri, "cam", "train", {"nope": files["v0"]})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": "1.jpg", "keypoints": [1, 2], "idx": 0}]))
    with pytest.raises(CorpusError, match="bad.json: detection 0"):
        import_poses(uri, "cam", "train", {"v0": str(bad)})
