"""3D-CNN backbones: the full-size architectures' feature sizes and parameter counts, weights loading
from a local file (prefixes and classifier keys handled, mismatches named), and the explicit choice of
random weights."""

from __future__ import annotations

import pytest
import torch

from omnivad.video.backbones import BackboneError, backbone_names, build_backbone


def test_full_size_architectures_on_a_tiny_clip():
    x = torch.rand(2, 3, 16, 32, 32)
    with torch.no_grad():
        assert build_backbone("i3d", random_weights=True)(x).shape == (2, 1024)
        r3d = build_backbone("r3d18", random_weights=True)
        assert r3d(x).shape == (2, 512)
    # torchvision's r3d_18 has 33,371,472 parameters, 205,200 of them in its 400-way fc
    assert sum(p.numel() for p in r3d.parameters()) == 33_371_472 - 205_200
    assert backbone_names() == ["i3d", "r3d18"]


def test_random_weights_are_explicit_seeded_and_width_scales():
    with pytest.raises(BackboneError, match="--weights FILE"):
        build_backbone("i3d")
    with pytest.raises(BackboneError, match="unknown backbone 'c3d'"):
        build_backbone("c3d", random_weights=True)
    a, b, c = (build_backbone("i3d", 0.125, random_weights=True, seed=s) for s in (0, 0, 1))
    x = torch.rand(1, 3, 16, 24, 24)
    with torch.no_grad():
        fa, fb, fc = a(x), b(x), c(x)
    assert fa.shape == (1, 128) and torch.equal(fa, fb) and not torch.allclose(fa, fc)
    assert 1.0 < fa.norm() < 100.0  # usable scale (PyTorch's default init gives ~1e-6)


def test_weights_from_a_local_file(tmp_path):
    src = build_backbone("r3d18", 0.25, random_weights=True, seed=3)  # narrow: same code path, faster
    state = {f"module.{k}": v for k, v in src.state_dict().items()}  # DataParallel checkpoint
    state["module.fc.weight"] = torch.zeros(400, 128)  # classifier: ignored
    path = tmp_path / "r3d.pt"
    torch.save({"state_dict": state}, path)
    loaded = build_backbone("r3d18", 0.25, weights=str(path))
    x = torch.rand(1, 3, 16, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), src(x))
    with pytest.raises(BackboneError, match=rf"{path}: weights do not fit I3D: \d+ missing key\(s\) \(e.g. Conv3d_1a"):
        build_backbone("i3d", 0.25, weights=str(path))
    with pytest.raises(BackboneError, match=r"shape mismatch\(es\) \(e.g. stem.0.weight: file \(16, 3, 3, 7, 7\), model \(32,"):
        build_backbone("r3d18", 0.5, weights=str(path))
    with pytest.raises(BackboneError, match="not found"):
        build_backbone("r3d18", weights=str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(BackboneError, match="junk.pt: cannot read weights"):
        build_backbone("r3d18", weights=str(tmp_path / "junk.pt"))
