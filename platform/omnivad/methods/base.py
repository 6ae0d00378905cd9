"""What a method contributes to the platform: a model, its losses and its scoring rule.

The engine, the data pipeline and the protocols only talk to :class:`Method`; nothing outside
``methods/`` names a specific method.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import torch
from torch import nn

if TYPE_CHECKING:
    from omnivad.config import Config


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

    def to(self, device: torch.device | str) -> Batch:
        side = {k: v.to(device) for k, v in self.side.items()} if self.side is not None else None
        return Batch(self.x.to(device), self.mask.to(device), self.y.to(device), self.dom.to(device), side)


class Method(Protocol):
    """A registered method. Implementations are stateless; state lives in the model."""

    name: str

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> nn.Module:
        """A fresh model with one head per domain where the method has per-domain heads."""
        ...

    def loss(self, model: nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and named scalar terms to log. ``adapting`` is True during E3/E4 fine-tuning."""
        ...

    def score(self, model: nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        """Snippet scores (T,) of one video ``x`` (K, T, C), crops averaged, model in eval mode.

        ``target`` is the test domain; when the model has no head for it (or it is None) the method's
        unseen-domain rule applies.
        """
        ...


M = TypeVar("M", bound=nn.Module)


def unwrap_as(model: nn.Module, cls: type[M], method: str) -> M:
    """The ``cls`` network inside DistributedDataParallel-style wrappers (``.module``), or the model itself;
    a ValueError naming ``method`` when it is something else."""
    while not isinstance(model, cls) and hasattr(model, "module"):
        model = model.module
    if not isinstance(model, cls):
        raise ValueError(f"method {method!r} expects a {cls.__name__}, got {type(model).__name__}")
    return model


@contextmanager
def scoring(model: nn.Module, x: torch.Tensor) -> Iterator[torch.Tensor]:
    """Score one video the way every method does: ``x`` (K,T,C), or (T,C) as one crop, checked and moved to
    the model's device and dtype; the model in eval mode without gradients, its mode restored afterwards."""
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"expected x of shape (K, T, C) or (T, C), got {tuple(x.shape)}")
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield x.to(device=param.device, dtype=param.dtype)
    finally:
        model.train(was_training)
