"""BN-WVAD (Zhou et al., "BatchNorm-based Weakly Supervised Video Anomaly Detection", arXiv 2311.15367) as the
``bn-wvad`` method: a single-head model trained with the normal loss and the two mean-based pull-push losses on
DFM-selected snippets, scored by p·(DFM1+DFM2). Its enhancer is also the ``bn-wvad`` trunk (MDVAD heads on top).
Registers the method, the trunk and the ``bn_wvad`` config section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from omnivad.methods.base import MethodBase, unwrap_as
from omnivad.methods.bn_wvad.config import ALIASES, BNWVADConfig
from omnivad.methods.bn_wvad.loss import bn_wvad_loss, select, selection_counts
from omnivad.methods.bn_wvad.model import BNWVADEncoder, BNWVADNet, dfm
from omnivad.methods.bn_wvad.score import score_video
from omnivad.methods.registry import register
from omnivad.methods.trunks import register_trunk
from omnivad.sections import register_section

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch
    from omnivad.tune.config import SearchParam

__all__ = ["BNWVADConfig", "BNWVADEncoder", "BNWVADMethod", "BNWVADNet", "build_net", "dfm", "select",
           "selection_counts", "unwrap"]

register_section("bn_wvad", BNWVADConfig, aliases=ALIASES)


def unwrap(model: torch.nn.Module) -> BNWVADNet:
    return unwrap_as(model, BNWVADNet, "bn-wvad")


def encoder_kwargs(c: BNWVADConfig) -> dict[str, Any]:
    return {"embed_dim": c.embed_dim, "depth": c.depth, "heads": c.heads, "dim_head": c.dim_head,
            "mlp_dim": c.mlp_dim, "dropout": c.dropout}


def build_net(cfg: Config, domains: list[str], feature_dim: int) -> BNWVADNet:
    c = cfg.bn_wvad
    return BNWVADNet(feature_dim, list(domains), **encoder_kwargs(c), head_ratios=tuple(c.head_ratios),
                     bn_momentum=c.bn_momentum, distance=c.distance, score=c.score)


@register_trunk("bn-wvad", sections=("bn_wvad",))
def bn_wvad_trunk(cfg: Config, feature_dim: int) -> BNWVADEncoder:
    return BNWVADEncoder(feature_dim, **encoder_kwargs(cfg.bn_wvad))


@register("bn-wvad")
class BNWVADMethod(MethodBase):
    section = "bn_wvad"

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> BNWVADNet:
        return build_net(cfg, domains, feature_dim)

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        return bn_wvad_loss(model, unwrap(model), batch, cfg)

    def score(self, model: torch.nn.Module, x: torch.Tensor, target: str | None, score: str | None = None) -> torch.Tensor:
        """§2.8 snippet scores (T,) of x (K,T,C). One head for every domain, so ``target`` does not matter."""
        return score_video(unwrap(model), x, score)

    def score_range(self) -> tuple[float, float, str]:
        return (0.0, float("inf"), "classifier probability p in [0, 1] times the summed feature distances DFM1 + DFM2 "
                                   "(>= 0, unbounded; bn_wvad.score=classifier: [0, 1])")

    def default_search_space(self) -> list[SearchParam]:
        """The shared default space plus BN-WVAD's selection ratios ρ_s, ρ_b (§2.6)."""
        from omnivad.tune.config import SearchParam

        return [*super().default_search_space(),
                SearchParam(path="bn_wvad.rho_sample", low=0.05, high=0.5),
                SearchParam(path="bn_wvad.rho_batch", low=0.05, high=0.5)]
