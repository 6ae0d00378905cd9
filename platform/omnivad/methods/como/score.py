"""CLAV+CoMo test-time snippet scores (spec ``clav_como.md`` §3.5)."""

from __future__ import annotations

import torch

from omnivad.methods.base import scoring
from omnivad.methods.como.model import CLAVCoMoNet


def score_video(model: CLAVCoMoNet, x: torch.Tensor, alpha: float) -> torch.Tensor:
    """§3.5: (S + α·S_R) / (1 + α) per snippet (T,) of one video x (K,T,C) or (T,C), crops averaged, eval mode.

    The 1/(1+α) keeps scores in [0,1]; it changes no ranking, so AUC and AP are those of S + α·S_R. Without the CoMo
    module (``como.como=false``) the score is S."""
    with scoring(model, x) as xs:
        out = model(xs, False)
    if "s_r" not in out:  # no CoMo module (Table 2a): the score is S alone (§7)
        return out["s"].mean(0).float()
    return ((out["s"] + alpha * out["s_r"]).mean(0) / (1 + alpha)).float()
