"""zxVAD scoring (spec §7.1): PSNR of G's predicted next frame, per-video min-max normalisation,
the first ``T`` frames of each video dropped, pooled frame-level ROC-AUC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from omnivad.metrics import frame_metrics


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR on the [0, 1] scale of frames given in [-1, 1]: 10 log10(1 / MSE). -> (B,)"""
    mse = (((pred + 1) / 2 - (target + 1) / 2) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp(min=1e-10))


def regularity(psnrs: np.ndarray, per_video_norm: bool = True) -> np.ndarray:
    """S_t = (PSNR_t - min) / (max - min) over one video (0 when the PSNR is constant); the raw PSNR
    when ``per_video_norm`` is off (pooled scoring)."""
    p = np.asarray(psnrs, dtype=np.float64)
    if not per_video_norm:
        return p
    span = p.max() - p.min()
    return (p - p.min()) / span if span > 0 else np.zeros_like(p)


@torch.no_grad()
def video_psnr(generator: torch.nn.Module, frames: torch.Tensor, clip_len: int = 4, batch: int = 16) -> np.ndarray:
    """PSNR of every predictable frame t >= clip_len of one video ``frames`` (N, C, H, W) in [-1, 1]."""
    was = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    out = []
    n = frames.shape[0]
    for start in range(clip_len, n, batch):
        idx = torch.arange(start, min(start + batch, n))
        x = torch.stack([frames[i - clip_len : i].flatten(0, 1) for i in idx.tolist()]).to(device)
        pred, _ = generator(x)
        out.append(psnr(pred, frames[idx].to(device)).cpu())
    generator.train(was)
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def anomaly_scores(psnrs: Sequence[np.ndarray], per_video_norm: bool = True) -> list[np.ndarray]:
    """Anomaly score per scored frame, one array per video: 1 - S_t (or -PSNR without normalisation)."""
    return [(1 - regularity(p) if per_video_norm else -np.asarray(p, dtype=np.float64)) for p in psnrs]


def frame_auc(
    psnrs: Sequence[np.ndarray], labels: Sequence[np.ndarray], drop_first: int, per_video_norm: bool = True
) -> dict[str, float]:
    """Pooled frame-level metrics: ``psnrs[i]`` scores frames ``drop_first..`` of video ``i`` whose full
    0/1 ground truth is ``labels[i]``; its first ``drop_first`` labels are dropped (§7.1 step 1)."""
    scores = anomaly_scores(psnrs, per_video_norm)
    gts = []
    for i, (s, y) in enumerate(zip(scores, labels)):
        g = np.asarray(y)[drop_first:]
        if g.shape[0] != s.shape[0]:
            raise ValueError(f"video {i}: {s.shape[0]} scored frames but {g.shape[0]} labels after dropping {drop_first}")
        gts.append(g)
    return frame_metrics(np.concatenate(scores), np.concatenate(gts))
