"""CLAV+CoMo's config section ``como`` (registered by :mod:`omnivad.methods.como`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnivad.sections import Section


class CoMoConfig(Section):
    """CLAV+CoMo (``model.method=como``), ../shared/specs/clav_como.md. Defaults are the paper's (§4) and the
    spec's chosen readings (§8); each ``Literal`` option's second value is the spec's alternative."""

    ica: bool = Field(default=True, description="Table 2a/3: the ICA module; false: F = B (no ICA parameters)")
    como: bool = Field(
        default=True,
        description="Table 2a/5: the CoMo module; false (§7): no S_R, F_R, L_dist(F_R), L_int, L_obj; score S only",
    )
    ica_kernel: Literal[1, 3] = Field(default=3, description="§8.2: kernel of the ICA Conv1D (1: per-snippet MFM)")
    hidden: int = Field(default=512, ge=1, description="FC1 width of the score head (RTFM)")
    embed_dim: int = Field(default=128, ge=1, description="d: FC2 embedding fed to CSN/CSA")
    dropout: float = Field(default=0.7, ge=0.0, lt=1.0, description="dropout after FC1 and FC2 (RTFM)")
    nodes: int = Field(default=32, ge=1, description="n: graph nodes of the interaction space")
    states: int = Field(default=128, ge=1, description="st: graph state dims (= F_R width)")
    context_fraction: float = Field(default=0.8, gt=0.0, le=1.0, description="N = int(fraction·T) low-motion snippets")
    object_classes: int = Field(default=80, ge=1, description="C: object classes of side_objects (80 COCO)")
    context_nodes: Literal["broadcast", "own-projection"] = Field(
        default="broadcast", description="§8.7: V_cont from F_cont broadcast through P, or from H_ctx with its own P_c"
    )
    fusion: Literal["nodes", "states"] = Field(default="nodes", description="§8.8: concatenate the graphs along nodes or states")
    k: int = Field(default=3, ge=1, description="K: top-K snippets per video")
    distance_margin: float = Field(default=0.3, ge=0.0, le=2.0, description="relative distance margin (Eq. 7)")
    cs_weight: float = Field(default=1.0, ge=0.0, description="c_s: weight of L_cs")
    dist_weight: float = Field(default=10.0, ge=0.0, description="d: weight of L_dist(F) + L_dist(F_R)")
    int_weight: float = Field(default=1.0, ge=0.0, description="weight of L_int (motion intensity)")
    obj_weight: float = Field(default=1.0, ge=0.0, description="weight of L_obj (object classes)")
    smooth_weight: float = Field(default=8e-4, ge=0.0, description="λ_smooth on abnormal S and S_R (RTFM)")
    sparse_weight: float = Field(default=8e-3, ge=0.0, description="λ_sparse on abnormal S and S_R (RTFM)")
    mil: Literal["per-score", "mean"] = Field(default="per-score", description="§8.11: BCE per selected score, or on top-K means")
    dist_pairs: Literal["paired", "all"] = Field(default="paired", description="§8.13: b-th normal with b-th abnormal, or all pairs")
    cs_detach: bool = Field(default=False, description="§8.14: detach the L_cs target F_topk")
    crops: Literal["all", "random"] = Field(default="all", description="§8.4: every crop (scores averaged), or one random crop")
    intensity_norm: Literal["video-minmax", "none"] = Field(
        default="video-minmax", description="§8.5: min-max normalise side_flow per video, or use it as stored"
    )
    side_signals: Literal["auto", "ignore"] = Field(
        default="auto", description="auto: L_int/L_obj on when the batch carries side_flow/side_objects; ignore: never"
    )
    alpha: float = Field(default=0.1, ge=0.0, description="test fusion S + α·S_R for domains not in alpha_domains")
    alpha_domains: dict[str, float] = Field(
        default_factory=lambda: {"UCF": 0.1, "XD": 1.0, "ST": 0.4, "AV": 0.1}, description="per-domain α (paper §4)"
    )


ALIASES: dict[str, str] = {"como.margin": "como.distance_margin"}
