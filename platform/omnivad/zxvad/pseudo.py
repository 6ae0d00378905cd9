"""Pseudo-anomaly synthesis O (spec §3): object masks from a random, frozen ResNet and an
object-aware CutMix paste of a donor's object into one of G's input frames."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet152": (3, 8, 36, 3)}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class RandomResNet(nn.Module):
    """torchvision's ResNet-50/152 layout and default init (``weights=None``), up to ``last_layer``;
    random, frozen, eval mode: R of §3.2 (torchvision itself is not a dependency)."""

    def __init__(self, arch: str = "resnet50", last_layer: str = "layer4", seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
                                      nn.MaxPool2d(3, 2, 1))
            n_layers = int(last_layer[-1])
            layers, cin = [], 64
            for i, depth in enumerate(_DEPTHS[arch][:n_layers]):
                width = 64 * 2**i
                blocks = [Bottleneck(cin, width, 1 if i == 0 else 2)]
                cin = width * 4
                blocks += [Bottleneck(cin, width, 1) for _ in range(depth - 1)]
                layers.append(nn.Sequential(*blocks))
            self.layers = nn.Sequential(*layers)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "RandomResNet":
        return super().train(False)  # R stays in eval mode (A3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


@torch.no_grad()
def object_mask(r: nn.Module, x: torch.Tensor, threshold: float = 0.1, norm: str = "minmax") -> torch.Tensor:
    """§3.2: SCDA channel sum of R(x), normalised per image (A2), thresholded, nearest-upsampled.

    ``x`` (B, 3, H, W) in [-1, 1] -> binary mask (B, 1, H, W)."""
    a = r(x).sum(dim=1, keepdim=True)
    lo = a.flatten(1).amin(1).view(-1, 1, 1, 1) if norm == "minmax" else torch.zeros_like(a[:, :, :1, :1])
    hi = a.flatten(1).amax(1).view(-1, 1, 1, 1)
    a = (a - lo) / (hi - lo + 1e-8)
    m = (a > threshold).float()
    return F.interpolate(m, size=x.shape[-2:], mode="nearest")


def sample_box(h: int, w: int, gen: torch.Generator) -> tuple[int, int, int, int]:
    """§3.3 (A1): CutMix box, side sqrt(1 - beta) * (W, H), uniform centre, corners clipped, resampled
    when empty. Returns (b1, b2, b3, b4): x from b1 to b2, y from b3 to b4."""
    while True:
        beta, cx, cy = torch.rand(3, generator=gen).tolist()
        rx, ry = w * math.sqrt(1 - beta), h * math.sqrt(1 - beta)
        cx, cy = cx * w, cy * h
        b1, b2 = (min(max(round(cx - rx / 2), 0), w), min(max(round(cx + rx / 2), 0), w))
        b3, b4 = (min(max(round(cy - ry / 2), 0), h), min(max(round(cy + ry / 2), 0), h))
        if b2 > b1 and b4 > b3:
            return b1, b2, b3, b4


class PseudoAnomaly(nn.Module):
    """O: ``(base frames, donor frames) -> (pseudo-abnormal frames v~, pasted-object masks M~)``.

    ``mix``: ``object`` (the paper's object-aware paste), ``cutmix`` (the whole box) or ``mixup``
    (global blend with weight beta; M~ is then beta everywhere), the Fig. 5c ablations."""

    def __init__(self, arch: str = "resnet50", layer: str = "layer4", threshold: float = 0.1, norm: str = "minmax",
                 mix: str = "object", seed: int = 0) -> None:
        super().__init__()
        self.r = RandomResNet(arch, layer, seed) if mix == "object" else None
        self.threshold, self.norm, self.mix = threshold, norm, mix

    @torch.no_grad()
    def forward(self, base: torch.Tensor, donor: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = base.shape
        if self.mix == "mixup":
            beta = torch.rand(b, 1, 1, 1, generator=gen).to(base.device)
            return beta * donor + (1 - beta) * base, beta.expand(b, 1, h, w).clone()
        if self.r is not None:
            masks = object_mask(self.r, donor, self.threshold, self.norm)
        else:
            masks = torch.ones(b, 1, h, w, device=base.device)
        out, m_out = base.clone(), torch.zeros(b, 1, h, w, device=base.device)
        for i in range(b):
            b1, b2, b3, b4 = sample_box(h, w, gen)
            size = (b4 - b3, b2 - b1)
            obj = F.interpolate((masks[i : i + 1] * donor[i : i + 1]), size=size, mode="bilinear", align_corners=False)
            m = F.interpolate(masks[i : i + 1], size=size, mode="nearest")
            region = out[i : i + 1, :, b3:b4, b1:b2]
            out[i : i + 1, :, b3:b4, b1:b2] = torch.where(m > 0.5, obj, region)
            m_out[i, :, b3:b4, b1:b2] = m[0]
        return out, m_out
