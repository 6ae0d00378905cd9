"""MDVAD test-time snippet scores (spec ``mdvad.md`` Eq. 5, §6.1–6.2).

- single head (MIL): s^a.
- Null-MIL: seen target → the target's head s^a_t; unseen → max_d s^a_d.
- NullAng-MIL: seen → cos^a_t + 1 − cos^n_t; unseen → max_d cos^a_d + 1 − max_d cos^n_d (no margin at test).

Crops: the head outputs are averaged over the crops first and Eq. 5 is applied to the averages, the same order
as in training (§7) and in unseen-target fine-tuning (§6.5). For the seen branches (linear in the head outputs)
this equals averaging the final scores over crops (RTFM); it differs only for the max in the unseen branches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.base import scoring
from omnivad.methods.mdvad.loss import forward_crops

if TYPE_CHECKING:
    from omnivad.methods.mdvad.model import MDVADNet


def scores_from_outputs(out: dict[str, torch.Tensor], head: str, target_index: int) -> torch.Tensor:
    """Eq. 5 on (crop-averaged) outputs ``abn``/``nrm`` (..., T, M); target_index -1 means unseen."""
    abn = out["abn"]
    if head == "single":
        return abn[..., 0]
    if head == "null":
        return abn[..., target_index] if target_index >= 0 else abn.max(-1).values
    nrm = out["nrm"]
    if target_index >= 0:
        return abn[..., target_index] + 1 - nrm[..., target_index]
    return abn.max(-1).values + 1 - nrm.max(-1).values


def score_video(model: MDVADNet, x: torch.Tensor, target: str | None) -> torch.Tensor:
    """Snippet scores (T,) of one video x (K,T,C) (or (T,C): one crop), crops averaged, in eval mode, no grad.

    ``target`` None or a domain without a head selects the unseen branch. The result is float32 on the model's
    device; the model's train/eval mode is restored afterwards."""
    with scoring(model, x) as xs:
        out = forward_crops(model, xs.unsqueeze(0))
        s = scores_from_outputs(out, model.head, model.domain_index(target))
    return s[0].float()


class ScoringNet(torch.nn.Module):
    """:func:`score_video` as one module for export: x (K,T,C) → (T,), every crop real (no mask branch, so
    tracing and ``torch.export`` see plain tensor code); the head index is fixed at construction."""

    def __init__(self, model: MDVADNet, target: str | None) -> None:
        super().__init__()
        self.model = model
        self.head = model.head
        self.index = model.domain_index(target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.model.crop_average == "inputs":
            out = self.model(x.mean(0, keepdim=True))  # the crops' mean feature (1, T, ...)
        else:
            out = {k: v.mean(0, keepdim=True) for k, v in self.model(x).items()}  # crop means (1, T, ...)
        return scores_from_outputs(out, self.head, self.index)[0].float()
