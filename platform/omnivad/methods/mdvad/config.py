"""MDVAD's config section ``mdvad`` (registered by :mod:`omnivad.methods.mdvad`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from omnivad.sections import Section


class MDVADConfig(Section):
    """MDVAD (``model.method=mil|null-mil|nullang-mil``), ../shared/specs/mdvad.md: the trunk and heads (formerly
    ``model.*``) and the losses (formerly ``loss.*``)."""

    trunk: str = Field(
        default="mdvad",
        description="shared trunk under MDVAD's heads and AC (methods.trunks registry): mdvad (F_agg+F_DA) or bn-wvad (BN-WVAD's encoder)",
    )
    hidden: int = Field(default=128, ge=1, description="width of the FC layer before the heads")
    ang_scale: float = Field(default=1.0, gt=0, description="logit scale of NullAng (Eq. 4 has 1)")
    dropout: float = Field(default=0.7, ge=0, lt=1, description="dropout inside the AC classifier (spec §7)")
    head_dropout: float = Field(
        default=0.0, ge=0, lt=1,
        description="dropout on the FC layer's output F before the heads (spec: none; issue 17 ablation)",
    )
    head_lr_mult: float = Field(
        default=1.0, gt=0,
        description="learning rate of the heads (single, null or nullang) relative to train.lr; the trunk, FC and AC keep train.lr (spec: 1; issue 17 ablation)",
    )
    crop_average: Literal["outputs", "inputs"] = Field(
        default="outputs",
        description="A12: average the head outputs over the crops (RTFM), or the crops' features before the network",
    )
    unseen_finetune: Literal["max", "new-head"] = Field(
        default="max",
        description="A14: fine-tune an unseen target on the max over heads, or on a new head cloned from the most similar one",
    )

    k: int = Field(default=3, ge=1, description="top-K snippets per video")
    angular_margin: float = Field(default=0.3, ge=0.0, le=1.5, description="NullAng angular margin m (radians, Eq. 4)")
    ac: bool = Field(default=True, description="train the Abnormal-Conflict classifier")
    ac_weight: float = Field(default=10.0, ge=0.0, description="lambda")
    tau: float = Field(default=0.3, ge=0.0, le=2.0, description="AC spread threshold")
    ac_rule: Literal["diff", "std", "fixed"] = "diff"
    ac_band: tuple[float, float] = Field(default=(0.4, 0.7), description="single-head AC pseudo-label band")
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    ac_abnormal_weight: Literal["off", "adaptation", "always", "one-plus"] = "adaptation"
    topk_score: Literal["abnormal", "combined"] = Field(default="abnormal", description="A6: what picks NullAng's top-K")

    @field_validator("ac_band")
    @classmethod
    def _band(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] < v[1] <= 1.0:
            raise ValueError("expected 0 <= low < high <= 1")
        return v


#: Old keys of the fields now in ``mdvad`` (documented aliases, :mod:`omnivad.sections`).
ALIASES: dict[str, str] = {
    "loss": "mdvad",
    **{f"model.{f}": f"mdvad.{f}" for f in ("trunk", "hidden", "ang_scale", "dropout", "unseen_finetune")},
    "mdvad.margin": "mdvad.angular_margin",
}
