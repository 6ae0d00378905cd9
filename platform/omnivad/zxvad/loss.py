"""zxVAD losses (spec §5): the prediction backbone's, the Normalcy Classifier's four, the
adversarial terms, and the augmentation g(.) of L_RAA (Kornia is not a dependency; same three ops)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to01(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


# --- §5.1 backbone ---------------------------------------------------------------------------------


def _gauss_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float32) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of images in [0, 1] (A15), Gaussian window, C1 = 0.01^2, C2 = 0.03^2, 'valid' region
    (a window no larger than the image)."""
    c = x.shape[1]
    size = min(window, x.shape[-1], x.shape[-2])
    k = _gauss_window(size, sigma).to(x).expand(c, 1, size, size)
    mu_x, mu_y = F.conv2d(x, k, groups=c), F.conv2d(y, k, groups=c)
    sxx = F.conv2d(x * x, k, groups=c) - mu_x**2
    syy = F.conv2d(y * y, k, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, k, groups=c) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_GD: mean | |d_x pred| - |d_x target| | + | |d_y pred| - |d_y target| | (forward differences)."""
    dx = lambda t: (t[..., :, 1:] - t[..., :, :-1]).abs()  # noqa: E731
    dy = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs()  # noqa: E731
    return (dx(pred) - dx(target)).abs().mean() + (dy(pred) - dy(target)).abs().mean()


def memory_entropy(att: torch.Tensor) -> torch.Tensor:
    """L_MEM: sum_i -w^_i log(w^_i + 1e-12), averaged over queries. ``att`` (queries, K)."""
    return (-att * torch.log(att + 1e-12)).sum(dim=1).mean()


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """L_REC = L_MSE + L_SSM + L_GD (frames in [-1, 1]; SSIM on [0, 1])."""
    return {
        "mse": F.mse_loss(pred, target),
        "ssm": 1 - ssim(to01(pred), to01(target)),
        "gd": gradient_loss(pred, target),
    }


# --- §5.2 Normalcy Classifier ----------------------------------------------------------------------


def normalcy_loss(s_pred: torch.Tensor, s_pseudo: torch.Tensor) -> torch.Tensor:
    """Eq. 2: 1/2 E[(N(v^) - 1)^2] + 1/2 E[N(v~)^2]."""
    return 0.5 * ((s_pred - 1) ** 2).mean() + 0.5 * (s_pseudo**2).mean()


def relative_normalcy_loss(s_pred: torch.Tensor, s_pseudo: torch.Tensor) -> torch.Tensor:
    """Eq. 3 (RaLSGAN): the inner expectations are scalar batch means (A11)."""
    return 0.5 * ((s_pred - s_pseudo.mean() - 1) ** 2).mean() + 0.5 * ((s_pseudo - s_pred.mean() + 1) ** 2).mean()


def attention_affirmation_loss(a_pred: torch.Tensor, a_pseudo: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 4: 1/2 (1 - A(v^))^2 + 1/2 (M~ - A(v~))^2; M~ (B, 1, H, W) area-resized to A's grid (A10)."""
    m = F.adaptive_avg_pool2d(mask, a_pseudo.shape[-2:])[:, 0]
    return 0.5 * ((1 - a_pred) ** 2).mean() + 0.5 * ((m - a_pseudo) ** 2).mean()


def lsgan_real(s: torch.Tensor) -> torch.Tensor:
    """E[1/2 (s - 1)^2]: the adversarial term of L_G (for D and N) and L_D's real term."""
    return 0.5 * ((s - 1) ** 2).mean()


def lsgan_fake(s: torch.Tensor) -> torch.Tensor:
    return 0.5 * (s**2).mean()


# --- §4.5 augmentation g ---------------------------------------------------------------------------

_PRESETS = {
    # A13 default (the independent reproduction) and the Kornia doc example (alternative)
    "reproduction": {"jitter": 0.1, "degrees": 360.0, "translate": 0.0, "scale": (1.0, 1.0), "shear": (0.0, 0.0), "persp": 0.2},
    "kornia-doc": {"jitter": 0.1, "degrees": 360.0, "translate": 0.1, "scale": (0.7, 1.2), "shear": (30.0, 50.0), "persp": 0.5},
}


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _color_jitter(x: torch.Tensor, j: float, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation (factors in [1-j, 1+j]) and hue (rotation by up to j*2pi in YIQ)."""
    b = x.shape[0]
    v = lambda t: t.to(x).view(b, 1, 1, 1)  # noqa: E731
    x = x * v(_u(gen, b, 1 - j, 1 + j))
    x = (x - x.mean((1, 2, 3), keepdim=True)) * v(_u(gen, b, 1 - j, 1 + j)) + x.mean((1, 2, 3), keepdim=True)
    gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - gray) * v(_u(gen, b, 1 - j, 1 + j)) + gray
    theta = _u(gen, b, -j, j) * 2 * math.pi
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]).to(x)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    c, s = torch.cos(theta).to(x).view(b, 1, 1), torch.sin(theta).to(x).view(b, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], 1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq).clamp(0, 1)


def _homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """(B, 4, 2) point pairs -> (B, 3, 3) H with H @ src ~ dst."""
    rows = []
    for k in range(4):
        x, y = src[:, k, 0], src[:, k, 1]
        u, v = dst[:, k, 0], dst[:, k, 1]
        o, z = torch.ones_like(x), torch.zeros_like(x)
        rows.append(torch.stack([x, y, o, z, z, z, -u * x, -u * y], 1))
        rows.append(torch.stack([z, z, z, x, y, o, -v * x, -v * y], 1))
    a = torch.stack(rows, 1)
    rhs = dst.reshape(-1, 8)
    h = torch.linalg.solve(a, rhs)
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3)


def augment(x: torch.Tensor, gen: torch.Generator, preset: str = "reproduction") -> torch.Tensor:
    """g(.) (§4.5): colour jitter, random affine, random perspective, an independent draw per image.

    ``x`` (B, 3, H, W) in [-1, 1] -> same shape in [-1, 1]; differentiable in ``x``."""
    p = _PRESETS[preset]
    b = x.shape[0]
    y = _color_jitter(to01(x), p["jitter"], gen)
    # affine (rotation, translation, scale, x-shear) and perspective, composed in normalised coordinates
    ang = _u(gen, b, -p["degrees"], p["degrees"]) * math.pi / 180
    sc = _u(gen, b, *p["scale"])
    sh = torch.tan(_u(gen, b, *p["shear"]) * math.pi / 180) * torch.sign(torch.rand(b, generator=gen) - 0.5)
    t = _u(gen, 2 * b, -p["translate"], p["translate"]).view(b, 2) * 2
    aff = torch.zeros(b, 3, 3)
    aff[:, 0, 0], aff[:, 0, 1] = sc * torch.cos(ang), sc * (-torch.sin(ang) + sh * torch.cos(ang))
    aff[:, 1, 0], aff[:, 1, 1] = sc * torch.sin(ang), sc * (torch.cos(ang) + sh * torch.sin(ang))
    aff[:, :2, 2], aff[:, 2, 2] = t, 1
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]).expand(b, 4, 2)
    moved = corners + _u(gen, 8 * b, -p["persp"], p["persp"]).view(b, 4, 2) * (corners.abs())
    warp = _homography(corners, moved) @ aff  # output coords -> input coords (inverse map)
    h, w = x.shape[-2:]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)
    src = pts @ warp.transpose(1, 2)
    grid = (src[..., :2] / src[..., 2:].clamp(min=1e-6)).view(b, h, w, 2).to(x)
    y = F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return y * 2 - 1
