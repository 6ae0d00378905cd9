"""One training step's batch: what the data pipeline produces and every method's loss consumes.

Lives in ``data/`` so the data pipeline needs nothing from ``methods/`` (``omnivad.methods.base.Batch`` re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One training step's videos, already resampled to T segments.

    x:    (B, K, T, C) float32 crop features (K = the largest crop count in the batch)
    mask: (B, K) bool, True for real crops (padded crops repeat crop 0 and are masked out of averages)
    y:    (B,) float32 video labels (0 normal, 1 abnormal)
    dom:  (B,) int64 index of each video's domain in ``model.domains``; -1 for a domain the model has
          no head for (fine-tuning on an unseen target, MDVAD §6.5)
    side: per-snippet side signals every video of the batch has, resampled like x, e.g. ``flow`` (B, T)
          and ``objects`` (B, T, W) (``corpus/format.py`` side columns); None when there are none
    """

    x: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    dom: torch.Tensor
    side: dict[str, torch.Tensor] | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """On ``device`` (``non_blocking``: asynchronous host-to-GPU copies from pinned memory)."""
        nb = non_blocking
        side = {k: v.to(device, non_blocking=nb) for k, v in self.side.items()} if self.side is not None else None
        return Batch(self.x.to(device, non_blocking=nb), self.mask.to(device, non_blocking=nb),
                     self.y.to(device, non_blocking=nb), self.dom.to(device, non_blocking=nb), side)
