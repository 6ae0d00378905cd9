"""BN-WVAD (Zhou et al., "BatchNorm-based Weakly Supervised Video Anomaly Detection", arXiv 2311.15367) as the
``bn-wvad`` method: a single-head model trained with the normal loss and the two mean-based pull-push losses on
DFM-selected snippets, scored by p·(DFM1+DFM2). Its enhancer is also the ``bn-wvad`` trunk (MDVAD heads on top).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.base import scoring, unwrap_as
from omnivad.methods.bn_wvad.loss import bn_wvad_loss, select, selection_counts
from omnivad.methods.bn_wvad.model import BNWVADEncoder, BNWVADNet, dfm
from omnivad.methods.registry import register

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch

__all__ = ["BNWVADEncoder", "BNWVADMethod", "BNWVADNet", "dfm", "select", "selection_counts", "unwrap"]


def unwrap(model: torch.nn.Module) -> BNWVADNet:
    return unwrap_as(model, BNWVADNet, "bn-wvad")


@register("bn-wvad")
class BNWVADMethod:
    name: str

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> BNWVADNet:
        return BNWVADNet.from_config(cfg, list(domains), feature_dim)

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        return bn_wvad_loss(model, unwrap(model), batch, cfg)

    def score(self, model: torch.nn.Module, x: torch.Tensor, target: str | None, score: str | None = None) -> torch.Tensor:
        """§2.8 snippet scores (T,) of x (K,T,C): each crop's p·(DFM1+DFM2), then the mean over crops (the code
        averages the product). One head for every domain, so ``target`` does not matter."""
        net = unwrap(model)
        with scoring(net, x) as xs:
            s = net.snippet_scores(xs, score)
        return s.mean(0).float()
