"""MDVAD methods (Cho et al., NeurIPS 2024): ``mil`` (single head), ``null-mil`` and ``nullang-mil``.

All three share :class:`MDVADNet` (with its Abnormal-Conflict classifier, whose loss ``cfg.loss.ac`` switches
on); they differ in the head type, Eq. 1/2/4 and the Eq. 5 scoring branch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.mdvad.loss import forward_crops, mdvad_loss, unwrap
from omnivad.methods.mdvad.model import MDVADNet
from omnivad.methods.mdvad.score import score_video
from omnivad.methods.registry import register

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch

__all__ = ["MDVADNet", "MILMethod", "NullMILMethod", "NullAngMILMethod", "most_similar_domain"]


@torch.no_grad()
def most_similar_domain(model: MDVADNet, x: torch.Tensor, mask: torch.Tensor | None = None) -> str:
    """The source domain whose head gives the highest mean abnormal score on x (B,K,T,C) (A14 alternative)."""
    was_training = model.training
    model.eval()
    try:
        abn = forward_crops(model, x, mask)["abn"]  # (B, T, M)
    finally:
        model.train(was_training)
    return model.domains[int(abn.mean(dim=(0, 1)).argmax())]


class _MDVADMethod:
    name: str
    head: str
    trunked = True  # heads (and AC) on the registered trunk named by model.trunk

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> MDVADNet:
        m = cfg.model
        return MDVADNet(
            feature_dim, list(domains), head=self.head, hidden=m.hidden, dropout=m.dropout, ang_scale=m.ang_scale,
            trunk=m.trunk, trunk_cfg=cfg,
        )

    def loss(self, model: MDVADNet, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        self._check(model)
        return mdvad_loss(model, batch, cfg, adapting)

    def score(self, model: MDVADNet, x: torch.Tensor, target: str | None) -> torch.Tensor:
        model = unwrap(model)
        self._check(model)
        return score_video(model, x, target)

    def prepare_target(self, model: MDVADNet, target: str, cfg: Config, x: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> bool:
        """Before fine-tuning on ``target`` (E3/E4): with ``cfg.model.unseen_finetune == "new-head"`` and a
        multi-head model without a head for it, add one cloned from :func:`most_similar_domain` on the target's
        training features x (B,K,T,C); returns True when a head was added (rebuild the optimiser). Otherwise the
        model is left as it is and the target trains with dom = -1 (max over heads, §6.5)."""
        model = unwrap(model)
        self._check(model)
        if self.head == "single" or target in model.domains or cfg.model.unseen_finetune != "new-head":
            return False
        if x is None:
            raise ValueError("unseen_finetune=new-head needs the target's training features to pick the source head")
        model.add_domain(target, init_from=most_similar_domain(model, x, mask))
        return True

    def _check(self, model: torch.nn.Module) -> None:
        model = unwrap(model)
        if getattr(model, "head", None) != self.head:
            raise ValueError(f"method {self.name!r} expects an MDVADNet with head {self.head!r}, got {getattr(model, 'head', None)!r}")


@register("mil")
class MILMethod(_MDVADMethod):
    head = "single"


@register("null-mil")
class NullMILMethod(_MDVADMethod):
    head = "null"


@register("nullang-mil")
class NullAngMILMethod(_MDVADMethod):
    head = "nullang"
