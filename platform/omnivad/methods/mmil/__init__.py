"""MMIL: the MIL ranking baseline of Sultani, Chen and Shah (CVPR 2018), Table 10's "MMIL" row.

L = Σ_pairs max(0, m − max_t s_a(t) + max_t s_n(t)) + λ1 Σ_t (s_a(t) − s_a(t+1))² + λ2 Σ_t s_a(t) (Eqs. 6–7; the
‖W‖ term is ``train.weight_decay``), averaged over pairs. A pair is an abnormal and a normal video of the same
domain; crops are averaged at the score level (the network runs on every real crop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.base import MethodBase, unwrap_as
from omnivad.methods.mmil.config import ALIASES, MMILConfig
from omnivad.methods.mmil.loss import mmil_loss, snippet_scores
from omnivad.methods.mmil.model import MMILNet, MMILTrunk
from omnivad.methods.mmil.score import score_video
from omnivad.methods.registry import register
from omnivad.methods.trunks import register_trunk
from omnivad.sections import register_section

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch

__all__ = ["MMILConfig", "MMILMethod", "MMILNet", "MMILTrunk", "mmil_loss", "unwrap"]

register_section("mmil", MMILConfig, aliases=ALIASES)


def unwrap(model: torch.nn.Module) -> MMILNet:
    return unwrap_as(model, MMILNet, "mmil")


@register_trunk("mmil", sections=("mmil",))
def mmil_trunk(cfg: Config, feature_dim: int) -> MMILTrunk:
    return MMILTrunk(feature_dim, cfg.mmil.hidden[0], cfg.mmil.dropout)


@register("mmil")
class MMILMethod(MethodBase):
    section = "mmil"

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> MMILNet:
        return MMILNet(feature_dim, list(domains), tuple(cfg.mmil.hidden), cfg.mmil.dropout)  # type: ignore[arg-type]

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        unwrap(model)
        s = snippet_scores(model, batch.x, batch.mask)
        c = cfg.mmil
        y = batch.y.to(s.device)
        return mmil_loss(s, y, batch.dom.to(s.device), c.rank_margin, c.lambda_smooth, c.lambda_sparse, c.pairing)

    def score(self, model: torch.nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        """Snippet scores (T,) of x (K,T,C), crops averaged, eval mode, no grad."""
        return score_video(unwrap(model), x)
