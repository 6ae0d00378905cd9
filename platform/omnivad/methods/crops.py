"""Crop handling shared by the methods (MDVAD A12): run a network on each video's real crops and average."""

from __future__ import annotations

import torch


def forward_crops(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None,
                  **kwargs: object) -> dict[str, torch.Tensor]:
    """Run ``model`` on the real crops of x (B,K,T,C) and average every output over each video's real crops
    (``kwargs`` go to the model's forward).

    Padded crops (mask False) never reach the network (so they do not touch BatchNorm statistics either).
    Returns ac (B,T), abn (B,T,M) and, for NullAng, nrm (B,T,M)."""
    if x.dim() != 4:
        raise ValueError(f"expected x of shape (B, K, T, C), got {tuple(x.shape)}")
    B, K, T, C = x.shape
    if mask is None:
        mask = torch.ones(B, K, dtype=torch.bool, device=x.device)
    mask = mask.to(device=x.device, dtype=torch.bool)
    counts = mask.sum(1)
    if bool((counts == 0).any()):
        raise ValueError("every video needs at least one real crop (mask all False for some video)")
    if bool(mask.all()):
        out = model(x.reshape(B * K, T, C), **kwargs)
        return {k: v.reshape(B, K, *v.shape[1:]).mean(1) for k, v in out.items()}
    owner = torch.arange(B, device=x.device).view(B, 1).expand(B, K)[mask]  # (R,)
    out = model(x[mask], **kwargs)
    avg = {}
    for key, v in out.items():
        acc = v.new_zeros(B, *v.shape[1:]).index_add(0, owner, v)
        avg[key] = acc / counts.to(v.dtype).view(B, *([1] * (v.dim() - 1)))
    return avg
