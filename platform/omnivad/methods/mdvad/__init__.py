"""MDVAD methods (Cho et al., NeurIPS 2024): ``mil`` (single head), ``null-mil`` and ``nullang-mil``.

All three share :class:`MDVADNet` (with its Abnormal-Conflict classifier, whose loss ``cfg.mdvad.ac`` switches
on); they differ in the head type, Eq. 1/2/4 and the Eq. 5 scoring branch. This package registers the three
methods, the ``mdvad`` config section (with the aliases of its old ``loss.*``/``model.*`` keys), the ``mdvad``
trunk and the ``mil`` WS model of ``uvad``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from omnivad.errors import ConfigError
from omnivad.methods.base import MethodBase, scoring, split_entry
from omnivad.methods.mdvad import trunk as _trunk  # noqa: F401  (registers the mdvad trunk)
from omnivad.methods.mdvad.config import ALIASES, MDVADConfig
from omnivad.methods.mdvad.loss import forward_crops, mdvad_loss, unwrap
from omnivad.methods.mdvad.model import MDVADNet
from omnivad.methods.mdvad.score import ScoringNet, score_video
from omnivad.methods.mdvad.ws import build_ws, mil_bag_loss
from omnivad.methods.registry import register, register_ws_model
from omnivad.methods.trunks import trunk_entry
from omnivad.sections import register_check, register_derived, register_section

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch

__all__ = ["MDVADConfig", "MDVADNet", "MILMethod", "NullMILMethod", "NullAngMILMethod", "most_similar_domain"]

register_section("mdvad", MDVADConfig, aliases=ALIASES)
register_ws_model("mil", build_ws, mil_bag_loss, aliases=("mdvad",))


def _write_topk_ratio(data: dict[str, Any], value: Any, cfg: Config) -> None:
    data["mdvad"]["k"] = max(1, round(float(value) * cfg.data.segments))


# the top-K as a share of the data.segments snippets (a searchable pseudo-field): mdvad.k = max(1, round(ratio * T))
register_derived("mdvad.topk_ratio", lambda cfg: cfg.mdvad.k / cfg.data.segments, _write_topk_ratio)


@register_check
def _check_trunk(cfg: Config) -> None:
    trunk_entry(cfg.mdvad.trunk)


@torch.no_grad()
def head_means(model: MDVADNet, x: torch.Tensor | list[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Each head's abnormal score (M,) averaged over every snippet of each video, then over the videos ``x``:
    a batch (B,K,T,C) (with its crop ``mask``) or a list of videos (K,T,C) / (1,K,T,C) of any lengths."""
    was_training = model.training
    model.eval()
    try:
        if isinstance(x, torch.Tensor):
            return forward_crops(model, x, mask)["abn"].mean(dim=(0, 1))  # (B, T, M) → (M,)
        vids = [v if v.dim() == 4 else v[None] for v in x]
        return torch.stack([forward_crops(model, v)["abn"].mean(dim=(0, 1)) for v in vids]).mean(0)
    finally:
        model.train(was_training)


def most_similar_domain(model: MDVADNet, x: torch.Tensor | list[torch.Tensor], mask: torch.Tensor | None = None) -> str:
    """The source domain whose head gives the highest mean abnormal score on x (A14 alternative)."""
    return model.domains[int(head_means(model, x, mask).argmax())]


class _MDVADMethod(MethodBase):
    section = "mdvad"
    head: str
    trunked = True  # heads (and AC) on the registered trunk named by mdvad.trunk

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> MDVADNet:
        m = cfg.mdvad
        sections = trunk_entry(m.trunk).sections
        return MDVADNet(
            feature_dim, list(domains), head=self.head, hidden=m.hidden, dropout=m.dropout, ang_scale=m.ang_scale,
            trunk=m.trunk, trunk_config={s: getattr(cfg, s).model_dump(mode="json") for s in sections},
            head_dropout=m.head_dropout, crop_average=m.crop_average,
        )

    def optimizer_params(self, model: MDVADNet, cfg: Config) -> Any:
        """``model.parameters()`` (the spec); with ``mdvad.head_lr_mult`` != 1 two groups: the heads at
        ``train.lr * head_lr_mult``, everything else at ``train.lr``."""
        mult = cfg.mdvad.head_lr_mult
        if mult == 1.0:
            return model.parameters()
        heads = unwrap(model).all_head_parameters()
        ids = {id(p) for p in heads}
        rest = [p for p in model.parameters() if id(p) not in ids]
        return [{"params": rest}, {"params": heads, "lr": cfg.train.lr * mult}]

    def loss(self, model: MDVADNet, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        self._check(model)
        return mdvad_loss(model, batch, cfg, adapting)

    def score(self, model: MDVADNet, x: torch.Tensor, target: str | None) -> torch.Tensor:
        model = unwrap(model)
        self._check(model)
        return score_video(model, x, target)

    def aux_scores(self, model: MDVADNet, x: torch.Tensor, target: str | None) -> dict[str, Any]:
        """The Abnormal-Conflict classifier's per-snippet probability (T,), crops averaged."""
        net = unwrap(model)
        self._check(net)
        with scoring(net, x) as xs:
            ac = forward_crops(net, xs.unsqueeze(0))["ac"][0]
        return {"ac": ac.float().cpu().numpy()}

    def scoring_module(self, model: MDVADNet, target: str | None) -> torch.nn.Module:
        net = unwrap(model)
        self._check(net)
        return ScoringNet(net, target).eval()

    def score_range(self) -> tuple[float, float, str]:
        if self.head == "nullang":
            return (-1.0, 3.0, "cos_a + 1 - cos_n of the target's head (unseen: max_d cos_a + 1 - max_d cos_n), "
                                "each cosine in [-1, 1]")
        if self.head == "null":
            return (0.0, 1.0, "sigmoid abnormal probability of the target's head (unseen: the max over heads)")
        return (0.0, 1.0, "sigmoid abnormal probability of the single head")

    def tag(self, cfg: Config) -> str:
        trunk = f"@{cfg.mdvad.trunk}" if cfg.mdvad.trunk != "mdvad" else ""
        return self.name + trunk + ("+ac" if cfg.mdvad.ac else "")

    def has_ac(self, cfg: Config) -> bool:
        return True

    def entry_overrides(self, entry: str) -> dict[str, Any]:
        _name, trunk, ac = split_entry(entry)
        if trunk:
            trunk_entry(trunk)
        out: dict[str, Any] = {"model.method": self.name, "mdvad.trunk": trunk or "mdvad"}
        if ac is not None:
            out["mdvad.ac"] = ac
        return out

    def run_fields(self, cfg: Config) -> dict[str, Any]:
        return {**super().run_fields(cfg), "ac": cfg.mdvad.ac}

    def prepare_target(self, model: MDVADNet, target: str, cfg: Config, x: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> bool:
        """Before fine-tuning on ``target`` (E3/E4): with ``cfg.mdvad.unseen_finetune == "new-head"`` and a
        multi-head model without a head for it, add one cloned from :func:`most_similar_domain` on the target's
        training features x (B,K,T,C); returns True when a head was added (rebuild the optimiser). Otherwise the
        model is left as it is and the target trains with dom = -1 (max over heads, §6.5)."""
        model = unwrap(model)
        self._check(model)
        if self.head == "single" or target in model.domains or cfg.mdvad.unseen_finetune != "new-head":
            return False
        if x is None:
            raise ValueError("unseen_finetune=new-head needs the target's training features to pick the source head")
        model.add_domain(target, init_from=most_similar_domain(model, x, mask))
        return True

    def most_similar_head(self, model: MDVADNet, x: torch.Tensor | list[torch.Tensor],
                          mask: torch.Tensor | None = None) -> str | None:
        """The head that scores videos ``x`` most abnormal on average (A14); None for the single head, for a
        model without heads or for no videos."""
        model = unwrap(model)
        if model.head == "single" or not model.domains or (isinstance(x, list) and not x):
            return None
        return most_similar_domain(model, x, mask)

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

