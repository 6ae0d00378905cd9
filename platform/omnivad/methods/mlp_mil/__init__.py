"""The conflict study's reference baselines (issue 17): ``mlp-mil`` (one shared head) and ``mlp-null-mil`` (a head
per domain) on a one-layer MLP over crop-averaged features, trained with top-K BCE on the own head. Registered
methods, so every protocol, the search and the study run them like any other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.base import MethodBase, unwrap_as
from omnivad.methods.mlp_mil.config import MLPMILConfig
from omnivad.methods.mlp_mil.loss import topk_bce
from omnivad.methods.mlp_mil.model import MLPMILNet
from omnivad.methods.mlp_mil.score import score_video
from omnivad.methods.registry import register
from omnivad.sections import register_section

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.data.batch import Batch
    from omnivad.tune.config import SearchParam

__all__ = ["MLPMILConfig", "MLPMILNet", "MLPMILMethod", "MLPNullMILMethod"]

register_section("mlp_mil", MLPMILConfig)


class _MLPMIL(MethodBase):
    section = "mlp_mil"
    multi_head: bool

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> MLPMILNet:
        c = cfg.mlp_mil
        return MLPMILNet(feature_dim, list(domains), self.multi_head, c.hidden, c.dropout)

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        loss = topk_bce(unwrap_as(model, MLPMILNet, self.name), batch, cfg.mlp_mil.k)
        return loss, {"mil": float(loss.detach())}

    def score(self, model: torch.nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        return score_video(unwrap_as(model, MLPMILNet, self.name), x, target)

    def run_fields(self, cfg: Config) -> dict[str, object]:
        return {"method": self.name}

    def default_search_space(self) -> list[SearchParam]:
        from omnivad.tune.config import SearchParam

        return [SearchParam(path="mlp_mil.dropout", low=0.0, high=0.6),
                SearchParam(path="train.lr", low=1e-5, high=1e-2, log=True)]


@register("mlp-mil")
class MLPMILMethod(_MLPMIL):
    multi_head = False


@register("mlp-null-mil")
class MLPNullMILMethod(_MLPMIL):
    multi_head = True

    def head_domains(self, model: torch.nn.Module) -> list[str] | None:
        return list(unwrap_as(model, MLPMILNet, self.name).domains)
