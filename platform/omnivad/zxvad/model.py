"""zxVAD networks (spec §4): U-Net future-frame predictor G with a MemAE memory, the PatchGAN
discriminator D and the Normalcy Classifier N (same PatchGAN, no sigmoid, plus the attention map)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def double_conv(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
        nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
    )


class Memory(nn.Module):
    """MemAE memory (§4.2): soft cosine addressing, hard shrinkage, L1 re-normalisation, read-out."""

    def __init__(self, items: int, dim: int, shrink: float = 0.0005, sim: str = "cosine") -> None:
        super().__init__()
        self.items = nn.Parameter(torch.empty(items, dim).uniform_(-1 / math.sqrt(dim), 1 / math.sqrt(dim)))
        self.shrink, self.sim = shrink, sim

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` (B, Q, h, w) -> (read-out (B, Q, h, w), weights w^ (B*h*w, K))."""
        b, q, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, q)
        if self.sim == "cosine":
            logits = F.normalize(flat, dim=1) @ F.normalize(self.items, dim=1).t()
        else:
            logits = flat @ self.items.t()
        att = logits.softmax(dim=1)
        if self.shrink > 0:
            att = F.relu(att - self.shrink) * att / ((att - self.shrink).abs() + 1e-12)
            att = F.normalize(att, p=1, dim=1)
        out = (att @ self.items).reshape(b, h, w, q).permute(0, 3, 1, 2)
        return out, att


class Generator(nn.Module):
    """G (§4.1): feiyuhuahuo/Liu U-Net, ``T*3`` input channels -> one tanh frame, memory at the bottleneck."""

    def __init__(self, in_frames: int = 4, channels: int = 3, base: int = 64, memory_items: int = 2000,
                 shrink: float = 0.0005, sim: str = "cosine", use_memory: bool = True) -> None:
        super().__init__()
        c = base
        self.inc = double_conv(in_frames * channels, c)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), double_conv(c, 2 * c))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), double_conv(2 * c, 4 * c))
        self.down3 = nn.Sequential(nn.MaxPool2d(2), double_conv(4 * c, 8 * c))
        self.memory = Memory(memory_items, 8 * c, shrink, sim) if use_memory else None
        self.up1, self.conv1 = nn.ConvTranspose2d(8 * c, 4 * c, 2, stride=2), double_conv(8 * c, 4 * c)
        self.up2, self.conv2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2), double_conv(4 * c, 2 * c)
        self.up3, self.conv3 = nn.ConvTranspose2d(2 * c, c, 2, stride=2), double_conv(2 * c, c)
        self.outc = nn.Conv2d(c, channels, 3, padding=1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (B, T*C, H, W) in [-1, 1] -> (predicted frame (B, C, H, W), memory weights or None)."""
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        z = self.down3(x3)
        att = None
        if self.memory is not None:
            z, att = self.memory(z)
        y = self.conv1(torch.cat([x3, self.up1(z)], 1))
        y = self.conv2(torch.cat([x2, self.up2(y)], 1))
        y = self.conv3(torch.cat([x1, self.up3(y)], 1))
        return torch.tanh(self.outc(y)), att


class PatchDiscriminator(nn.Module):
    """Liu's PixelDiscriminator (§4.3, A8): k4 convs, no norm; 256x256 -> 1x35x35 patch scores.

    ``forward`` returns (scores, last hidden feature map (B, 512, 34, 34)); ``sigmoid=False`` gives N."""

    def __init__(self, channels: int = 3, widths: tuple[int, ...] = (128, 256, 512, 512), sigmoid: bool = True) -> None:
        super().__init__()
        layers, prev = [], channels
        for i, wd in enumerate(widths):
            layers += [nn.Conv2d(prev, wd, 4, stride=2 if i < len(widths) - 1 else 1, padding=2), nn.LeakyReLU(0.2, True)]
            prev = wd
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(prev, 1, 4, stride=1, padding=2)
        self.sigmoid = sigmoid
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        s = self.head(f)
        return (torch.sigmoid(s) if self.sigmoid else s), f


def attention(features: torch.Tensor) -> torch.Tensor:
    """NC attention (§4.4, A9): S = sum_c |F_c|, divided by its per-image max -> (B, h, w) in [0, 1]."""
    s = features.abs().sum(dim=1)
    return s / (s.flatten(1).amax(dim=1).view(-1, 1, 1) + 1e-8)


class ArcFace(nn.Module):
    """Additive angular margin loss (§5.2 Eq. 5) with learnable class centres W (D x classes)."""

    def __init__(self, dim: int, classes: int = 2, scale: float = 64.0, margin_deg: float = 28.6) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.empty(dim, classes))
        nn.init.xavier_normal_(self.centres)
        self.scale, self.margin = scale, math.radians(margin_deg)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = (F.normalize(emb, dim=1) @ F.normalize(self.centres, dim=0)).clamp(-1 + 1e-7, 1 - 1e-7)
        target = torch.cos(torch.acos(cos.gather(1, labels[:, None])) + self.margin)
        logits = cos.scatter(1, labels[:, None], target) * self.scale
        return F.cross_entropy(logits, labels)


def init_weights(module: nn.Module) -> None:
    """``weights_init_normal`` of the base code (§4.1): convs N(0, 0.02), BN weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
