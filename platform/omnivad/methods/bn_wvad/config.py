"""BN-WVAD's config section ``bn_wvad`` (registered by :mod:`omnivad.methods.bn_wvad`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from omnivad.sections import Section


class BNWVADConfig(Section):
    """BN-WVAD (``model.method=bn-wvad``), ../shared/specs/bn_wvad.md.

    The paper's 200-snippet training length is ``data.segments=200`` (``data.resample=mean`` is the code's
    segment-mean pooling, §1.4); its optimiser is ``train.lr=1e-4 train.weight_decay=5e-5``."""

    embed_dim: int = Field(default=512, ge=4, description="§2.2 enhancer width (embedding conv output, Transformer dim)")
    depth: int = Field(default=2, ge=1, description="§2.2 Transformer blocks")
    heads: int = Field(default=4, ge=1, description="§2.2 attention heads")
    dim_head: int = Field(default=128, ge=1, description="§2.2 width of one head (inner dim = heads × dim_head)")
    mlp_dim: int = Field(default=512, ge=1, description="§2.2 feed-forward hidden width")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="§2.2 Transformer dropout (0; UR-DMU used 0.5)")
    head_ratios: tuple[int, int] = Field(default=(16, 32), description="§2.3 normal head widths embed_dim/r1, embed_dim/r2")
    bn_momentum: float = Field(default=0.1, gt=0.0, le=1.0, description="§2.4 BatchNorm running-statistics momentum α (Table 8)")
    rho_sample: float | None = Field(
        default=None, ge=0.0, le=1.0, description="§2.6 ρ_s (sample-level ratio) for every domain; None: the per-dataset default"
    )
    rho_batch: float | None = Field(
        default=None, ge=0.0, le=1.0, description="§2.6 ρ_b (batch-level ratio) for every domain; None: the per-dataset default"
    )
    rho_by_domain: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"UCFC": (0.1, 0.2), "UCF": (0.1, 0.2), "XD": (0.2, 0.4), "ST": (0.3, 0.4), "SHT": (0.3, 0.4)},
        description="§2.6 per-dataset default (ρ_s, ρ_b) by domain name",
    )
    rho_default: tuple[float, float] = Field(default=(0.1, 0.2), description="(ρ_s, ρ_b) of a domain not in rho_by_domain (UCF's)")
    selection_scope: Literal["domain", "batch"] = Field(
        default="domain",
        description="multi-domain batches: select per domain with its own ratios (default), or once over the whole batch",
    )
    mpp_margin: float = Field(default=1.0, ge=0.0, description="§2.7 MPP (mean-based pull-push) margin m")
    lambda1: float = Field(default=5.0, ge=0.0, description="§2.7 weight of the layer-1 (32-d) MPP loss")
    lambda2: float = Field(default=20.0, ge=0.0, description="§2.7 weight of the layer-2 (16-d) MPP loss")
    normal_loss: Literal["mean", "sum"] = Field(default="mean", description="§7.2 L_nor over normal samples: code's mean or Eq. 6's sum")
    distance: Literal["mahalanobis", "euclidean", "cosine", "magnitude"] = Field(
        default="mahalanobis", description="§2.5 DFM; Table 7 variants and Table 4's feature magnitude (FM)"
    )
    score: Literal["product", "classifier", "dfm"] = Field(
        default="product", description="§2.8 test score p·(DFM1+DFM2); Table 5's Pred./DFM columns"
    )
    batching: Literal["videos", "crop_samples"] = Field(
        default="videos",
        description="§1.3/§3: videos = every real crop of the step's videos is a sample; crop_samples = the public "
        "code's batches: samples_per_class normal + samples_per_class abnormal (video, crop) samples per step, drawn "
        "from the step's videos (one crop per video first; give data.batch_per_class >= samples_per_class)",
    )
    samples_per_class: int = Field(default=64, ge=1, description="§3 crop_samples: normal (and abnormal) samples per step (64)")

    @field_validator("head_ratios")
    @classmethod
    def _ratios(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[1] < 1:
            raise ValueError("expected two positive divisors of embed_dim")
        return v


ALIASES: dict[str, str] = {"bn_wvad.margin": "bn_wvad.mpp_margin"}
