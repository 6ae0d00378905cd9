"""CLAV + CoMo (Cho et al., CVPR 2023; spec ``clav_como.md``): method ``como`` and trunk ``como``.

- ``model.method=como``: the whole model with one shared score head (every domain, every protocol); the
  motion-intensity (L_int) and object-class (L_obj) terms use the corpus's ``side_flow`` / ``side_objects``
  columns when the training videos carry them and are off otherwise (logged once, and ``int_on``/``obj_on`` in
  the loss logs).
- ``model.trunk=como`` (with ``model.method=nullang-mil`` / ``null-mil`` / ``mil``): ICA + CoMo (§2.2, §2.4) as
  the domain-agnostic part under MDVAD's heads and Abnormal-Conflict classifier, emitting [F ; F_R] per snippet.
  MDVAD's losses drive it; CLAV's decoders, L_dist and the side-signal terms are not part of that combination.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.base import MethodBase
from omnivad.methods.como.config import ALIASES, CoMoConfig
from omnivad.methods.como.loss import como_loss, unwrap
from omnivad.methods.como.model import CLAVCoMoNet, CoMo, CoMoTrunk
from omnivad.methods.como.score import score_video
from omnivad.methods.registry import register
from omnivad.methods.trunks import register_trunk
from omnivad.sections import register_section

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch

__all__ = ["CLAVCoMoConfig", "CLAVCoMoNet", "CoMo", "CoMoConfig", "CoMoMethod", "CoMoTrunk", "build_net"]

register_section("como", CoMoConfig, aliases=ALIASES)
CLAVCoMoConfig = CoMoConfig


def _como_kwargs(c: CoMoConfig) -> dict[str, object]:
    return {"ica_kernel": c.ica_kernel, "nodes": c.nodes, "states": c.states, "context_fraction": c.context_fraction,
            "context_nodes": c.context_nodes, "fusion": c.fusion, "ica": c.ica, "como": c.como}


def build_net(cfg: Config, domains: list[str], feature_dim: int) -> CLAVCoMoNet:
    c = cfg.como
    return CLAVCoMoNet(feature_dim, list(domains), hidden=c.hidden, embed_dim=c.embed_dim, dropout=c.dropout,
                       object_classes=c.object_classes, alpha=c.alpha, alpha_domains=c.alpha_domains,
                       **_como_kwargs(c))


@register("como")
class CoMoMethod(MethodBase):
    section = "como"
    find_unused_parameters = True  # the dynamics and object branches are off without flow / object side signals

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> CLAVCoMoNet:
        return build_net(cfg, domains, feature_dim)

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        unwrap(model)  # a ValueError unless it is a CLAVCoMoNet
        return como_loss(model, batch, cfg)

    def score(self, model: torch.nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        net = unwrap(model)
        return score_video(net, x, net.alpha_for(target))

    def score_range(self) -> tuple[float, float, str]:
        return (0.0, 1.0, "(S + alpha * S_R) / (1 + alpha) of the two sigmoid scores")


@register_trunk("como", sections=("como",))
def como_trunk(cfg: Config, feature_dim: int) -> CoMoTrunk:
    return CoMoTrunk(feature_dim, **_como_kwargs(cfg.como))

