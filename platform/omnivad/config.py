"""One configuration schema for every job (pydantic v2).

A config is built from defaults, then a YAML/JSON file, then ``--set a.b=c`` overrides, in that order.
Every error names the field (``train.lr``) and says what was expected. The resolved config is saved
next to every result (:func:`dump`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from omnivad.errors import ConfigError

DEFAULT_HOME = os.environ.get("OMNIVAD_HOME", os.path.join(os.path.expanduser("~"), ".omnivad"))


class Section(BaseModel):
    # allow_inf_nan=False: ``--set train.lr=.inf`` (or nan) is an error naming the field, in every section
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class CorpusConfig(Section):
    uri: str = Field(default=os.path.join(DEFAULT_HOME, "demo-corpus"), description="corpus root (path or s3://)")
    domains: list[str] | None = Field(default=None, description="domains to use (default: all in the corpus)")
    synth_if_missing: bool = Field(
        default=True,
        description="make the synthetic demo corpus when uri is its default location (OMNIVAD_HOME/demo-corpus) and "
        "absent; an explicit uri that holds no corpus is always an error",
    )
    verify: bool = Field(default=True, description="check every corpus part read against the sha256 in the manifest")


class BenchmarkConfig(Section):
    volume_normal: int | None = Field(default=None, ge=1, description="normal training videos per domain (default: smallest domain's)")
    volume_abnormal: int | None = Field(default=None, ge=1, description="abnormal training videos per domain (default: smallest domain's)")
    folds: int = Field(default=3, ge=1)
    seed: int = 0
    category_balance: Literal["proportional", "equal"] = Field(
        default="proportional", description="abnormal sampling keeps category shares, or equalises counts (MDVAD §2.3)"
    )
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0, description="validation share carved from each training set")
    low_shot_fraction: float = Field(default=0.1, gt=0.0, le=1.0, description="E3 subset size as a share of the training set")
    merge: dict[str, list[str]] = Field(default_factory=dict, description="auxiliary sets merged into a domain, e.g. {TAD: [CADP]}")
    aux_policy: Literal["fill", "pool"] = Field(
        default="fill", description="merged sets: fill = own videos first, aux fills the remainder; pool = sample the union"
    )


class ModelConfig(Section):
    method: str = Field(default="nullang-mil", description="registered method name")
    trunk: str = Field(
        default="mdvad",
        description="shared trunk under MDVAD's heads and AC (methods.trunks registry): mdvad (F_agg+F_DA) or bn-wvad (BN-WVAD's encoder)",
    )
    hidden: int = Field(default=128, ge=1, description="width of the FC layer before the heads")
    ang_scale: float = Field(default=1.0, gt=0, description="logit scale of NullAng (Eq. 4 has 1)")
    dropout: float = Field(default=0.7, ge=0, lt=1)
    unseen_finetune: Literal["max", "new-head"] = Field(
        default="max",
        description="A14: fine-tune an unseen target on the max over heads, or on a new head cloned from the most similar one",
    )


class LossConfig(Section):
    k: int = Field(default=3, ge=1, description="top-K snippets per video")
    margin: float = Field(default=0.3, ge=0.0, le=1.5, description="NullAng angular margin m (radians)")
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


class DataConfig(Section):
    segments: int = Field(default=32, ge=1, description="T: segments per training video")
    resample: Literal["mean", "nearest"] = Field(default="mean", description="A13: RTFM mean-pooled chunks or nearest snippet")
    batch_per_class: int = Field(default=32, ge=1, description="normal (and abnormal) videos per step, split over domains")
    crops: Literal["average", "all", "random"] = Field(default="average", description="A12: how training uses crops")


class TrainConfig(Section):
    steps: int = Field(default=15000, ge=1, description="iterations of single/E1/E2 runs (MDVAD A11)")
    lr: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    seed: int = 0
    eval_every: int = Field(default=100, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    log_every: int = Field(default=50, ge=1)
    selection: Literal["final", "best-val", "best-test"] = Field(
        default="best-val", description="model selection; best-test exists only to reproduce the papers"
    )
    finetune_steps: int = Field(default=1000, ge=1, description="E3 low-shot fine-tuning iterations (A11)")
    e4_steps: int = Field(default=5000, ge=1, description="E4 full fine-tuning iterations (A11)")
    max_failures: int = Field(
        default=3, ge=-1, description="worker failures Ray Train recovers from (restart from the latest checkpoint); -1: unlimited"
    )


class MetricsConfig(Section):
    """How test (and validation) scores are compared with the frame ground truth (omnivad.metrics)."""

    align: Literal["scores", "gt"] = Field(
        default="scores",
        description="scores: repeat each snippet score 16x and truncate/pad the scores to every gt frame (MDVAD, "
        "BN-WVAD); gt: truncate/pad the gt to 16*T frames (RTFM's test_10crop.py)",
    )
    domain_metric: dict[str, Literal["auc", "ap"]] = Field(
        default_factory=dict,
        description="headline metric of a domain in the tables (XD-style: ap); overrides the corpus manifest's metric",
    )


class ScalingConfig(Section):
    workers: int = Field(default=1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float = Field(default=0.0, ge=0)
    resources_per_worker: dict[str, float] = Field(default_factory=dict)
    max_concurrent_runs: int = Field(default=0, ge=0, description="0: as many as resources allow")


class ProtocolConfig(Section):
    name: Literal["single", "E1", "E2", "E3", "E4"] = "E1"
    folds: int = Field(default=1, ge=1, description="folds to run (≤ benchmark.folds)")
    targets: list[str] | None = Field(default=None, description="E2-E4 targets (default: all domains)")
    e4_start: Literal["E1", "E2", "both"] = "both"


class StorageConfig(Section):
    out: str = Field(default=os.path.join(DEFAULT_HOME, "runs"), description="results and checkpoints root (path or s3://)")


class RayConfig(Section):
    address: str | None = Field(default=None, description="Ray address; None starts or joins a local Ray")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of an embedded local Ray")


# --- Method and job sections. Each is owned by one method/job package; fields are documented there. ---


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
    margin: float = Field(default=1.0, ge=0.0, description="§2.7 MPP margin m")
    lambda1: float = Field(default=5.0, ge=0.0, description="§2.7 weight of the layer-1 (32-d) MPP loss")
    lambda2: float = Field(default=20.0, ge=0.0, description="§2.7 weight of the layer-2 (16-d) MPP loss")
    normal_loss: Literal["mean", "sum"] = Field(default="mean", description="§7.2 L_nor over normal samples: code's mean or Eq. 6's sum")
    distance: Literal["mahalanobis", "euclidean", "cosine", "magnitude"] = Field(
        default="mahalanobis", description="§2.5 DFM; Table 7 variants and Table 4's feature magnitude (FM)"
    )
    score: Literal["product", "classifier", "dfm"] = Field(
        default="product", description="§2.8 test score p·(DFM1+DFM2); Table 5's Pred./DFM columns"
    )

    @field_validator("head_ratios")
    @classmethod
    def _ratios(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[1] < 1:
            raise ValueError("expected two positive divisors of embed_dim")
        return v


class CoMoConfig(Section):
    """CLAV+CoMo (``model.method=como``), ../shared/specs/clav_como.md. Defaults are the paper's (§4) and the
    spec's chosen readings (§8); each ``Literal`` option's second value is the spec's alternative."""

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
    margin: float = Field(default=0.3, ge=0.0, le=2.0, description="relative distance margin (Eq. 7)")
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


class MMILConfig(Section):
    """Sultani MIL ranking baseline (``model.method=mmil``; Sultani, Chen, Shah, CVPR 2018, Eqs. 6–7)."""

    hidden: tuple[int, int] = Field(default=(512, 32), description="FC widths: C → 512 → 32 → 1 (sigmoid)")
    dropout: float = Field(default=0.6, ge=0.0, lt=1.0, description="dropout after each hidden FC layer")
    margin: float = Field(default=1.0, ge=0.0, description="ranking hinge margin: max(0, m − max s_a + max s_n)")
    lambda_smooth: float = Field(default=8e-5, ge=0.0, description="λ1: temporal smoothness Σ(s_t − s_t+1)² of abnormal bags")
    lambda_sparse: float = Field(default=8e-5, ge=0.0, description="λ2: sparsity Σ s_t of abnormal bags")
    pairing: Literal["paired", "all-pairs"] = Field(
        default="paired",
        description="hinge pairs: i-th abnormal with i-th normal video of the same domain (default), or every abnormal×normal pair of the domain",
    )


class SearchParam(Section):
    """One searched hyperparameter: a config field (``loss.tau``) or ``loss.topk_ratio`` (sets ``loss.k``)."""

    path: str = Field(description="dotted config field, e.g. loss.tau; loss.topk_ratio sets loss.k = max(1, round(ratio * data.segments))")
    low: float = Field(description="lower bound (inclusive)")
    high: float = Field(description="upper bound (inclusive)")
    log: bool = Field(default=False, description="sample uniformly in log space (low > 0)")
    type: Literal["float", "int"] = Field(default="float", description="float or integer values")

    @model_validator(mode="after")
    def _range(self) -> "SearchParam":
        if not self.high > self.low:
            raise ValueError(f"{self.path}: expected high > low (got low={self.low}, high={self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.path}: log-scale search needs low > 0 (got low={self.low})")
        return self


class TuneConfig(Section):
    """Ray Tune + Optuna hyperparameter search (``jobs/tune.py``)."""

    objective: Literal["E1", "E2", "both"] = Field(
        default="E1",
        description="E1: mean held-in validation AUC; E2: mean over held-out targets of the target's validation AUC; "
        "both: a two-objective search returning the Pareto front",
    )
    trials: int = Field(default=20, ge=1, description="number of trials (the start point included)")
    space: list[SearchParam] | None = Field(
        default=None, description="searched parameters (default: tau, lambda, m, top-K ratio, lr; rho_s, rho_b for bn-wvad)"
    )
    sampler: Literal["tpe", "random"] = Field(default="tpe", description="Optuna sampler (seeded with tune.seed)")
    seed: int = Field(default=0, description="sampler seed")
    start_from_config: bool = Field(default=True, description="evaluate the config's own values first (points_to_evaluate)")
    asha: bool = Field(default=True, description="ASHA early stopping on the objective's validation AUC")
    asha_multi: Literal["off", "first"] = Field(
        default="off", description="objective=both: no early stopping, or ASHA on the E1 objective only"
    )
    grace_steps: int | None = Field(default=None, ge=1, description="ASHA grace period in training steps (default: train.eval_every)")
    reduction_factor: float = Field(default=2.0, gt=1.0, description="ASHA reduction factor")
    max_concurrent_trials: int = Field(default=0, ge=0, description="0: as many as cluster CPUs allow (workers + 1 CPU per trial)")
    fold: int = Field(default=0, ge=0, description="benchmark fold whose train/validation splits the trials use")
    targets: list[str] | None = Field(default=None, description="E2 held-out targets (default: protocol.targets, else every domain)")
    evaluate_test: bool = Field(default=True, description="after the search, test the chosen config(s) once (best_test.json)")
    name: str = Field(default="search", description="search directory under storage.out (resume with the same name)")


class UVADConfig(Section):
    """Unsupervised wOCC–WS interleaving (``jobs/uvad.py``), ../shared/specs/wocc_ws.md."""

    occ: Literal["ae", "flow", "stg-nf"] = Field(default="ae", description="wOCC model: feature AE (§8), feature flow, or STG-NF on pose tracks (§3.1)")
    ws: Literal["rtfm", "mdvad"] = Field(default="rtfm", description="WS model: RTFM (§3.3) or the MDVAD single head on bags")
    q: float = Field(default=0.15, gt=0.0, lt=1.0, description="Q: rough abnormal ratio, T_1 = ceil(Q*N) (§3.7)")
    stop_ratio: float = Field(default=0.1, ge=0.0, le=1.0, description="P: stop when a drop <= P * reference drop")
    stop_reference: Literal["first-measured", "first"] = Field(
        default="first-measured", description="§9.9: code rule (T_2-T_3) or the paper's first change (T_1-T_2)")
    max_modules: int = Field(default=6, ge=1, description="module cap")
    loops: int = Field(default=6, ge=1, description="loops per module (code: fixed 6)")
    converge_tol: float | None = Field(default=None, gt=0.0, description="optional convergence test: end a module once mean|s_t - s_(t-1)| <= tol (>= 2 loops)")
    beta_init: Literal["object", "code"] = Field(
        default="object", description="§3.5: one Beta(1,5) draw per object, or the code's min over per-frame draws")
    beta: tuple[float, float] = Field(default=(1.0, 5.0), description="Beta(a, b) of the module-1 soft labels w")
    cleanup: bool = Field(default=True, description="§3.2.4 code-only label clean-up pass")
    bags: Literal["anchored", "random"] = Field(default="anchored", description="§3.3 bag builder: 3 top anchors + 13 random, or pure random")
    bag_size: int = Field(default=16, ge=4)
    ws_batch: int = Field(default=32, ge=1, description="positive (and negative) bags per WS iteration")
    ws_iters: int = Field(default=500, ge=1, description="WS iterations per loop (§9.7)")
    ws_lr: float = Field(default=1e-3, gt=0)
    ws_weight_decay: float = Field(default=5e-3, ge=0)
    ws_hidden: int = Field(default=512, ge=4, description="RTFM branch width (2048→512 in the paper; scaled to the feature dim when larger)")
    rtfm_k: int = Field(default=3, ge=1)
    rtfm_margin: float = Field(default=100.0, gt=0)
    rtfm_alpha: float = Field(default=1e-4, ge=0)
    rtfm_sparsity: float = Field(default=8e-3, ge=0)
    rtfm_smooth: float = Field(default=8e-4, ge=0)
    rtfm_extra_neg: bool = Field(default=True, description="§9.14: Joint-VAD's extra mean||x-||^2 term")
    dropout: float = Field(default=0.7, ge=0, lt=1)
    occ_epochs: int = Field(default=1, ge=1, description="wOCC epochs per loop")
    occ_batch: int = Field(default=256, ge=1)
    occ_lr: float = Field(default=5e-4, gt=0, description="Adamax lr (code)")
    occ_hidden: int = Field(default=128, ge=2, description="AE / flow hidden width")
    flow_steps: int = Field(default=8, ge=1, description="K flow steps (flow and STG-NF)")
    prior_mean: float = Field(default=3.0, description="R: STG-NF prior N(R*1, I)")
    grad_clip: float = Field(default=100.0, gt=0)
    seg_len: int = Field(default=24, ge=2, description="STG-NF pose window (SHT 24, UB 16)")
    seg_stride: int = Field(default=6, ge=1, description="STG-NF training window stride (scoring uses 1)")
    resolution: tuple[float, float] = Field(default=(856.0, 480.0), description="pose normalisation (width, height)")
    tail_fill: Literal["last", "zero"] = Field(default="last", description="§9.15: frames past 16*T_v take the last snippet or 0")
    seed: int = Field(default=2023)
    executor: Literal["local", "ray"] = Field(default="ray", description="local (in-process) or Ray (Train + Data)")


class VideoConfig(Section):
    """Raw video decoding and feature extraction (``jobs/extract.py``)."""

    backbone: str = Field(default="i3d", description="snippet backbone: i3d (1024-d) or r3d18 (512-d)")
    weights: str | None = Field(default=None, description="local weights file of the backbone (torch state dict)")
    random_weights: bool = Field(default=False, description="random backbone weights (tests only; exclusive with weights)")
    seed: int = Field(default=0, description="seed of the random backbone weights (the same network in every actor and run)")
    width: float = Field(default=1.0, gt=0.0, le=1.0, description="channel multiplier (1.0 = the published architecture)")
    frames_per_snippet: int = Field(default=16, ge=1, description="frames per snippet")
    fps: float | None = Field(default=None, gt=0.0, description="resample to this frame rate before snippeting (default: the video's own)")
    last_snippet: Literal["drop", "pad"] = Field(
        default="drop", description="a trailing partial snippet is dropped (T = floor(frames/16), I3D extractors) or padded with its last frame (ceil)")
    resize: int = Field(default=256, ge=1, description="shorter side after resizing, pixels")
    crop_size: int = Field(default=224, ge=1, description="square crop side, pixels")
    crops: Literal["ten", "center"] = Field(default="ten", description="ten-crop (4 corners + centre, and their flips) or the centre crop")
    on_error: Literal["fail", "skip"] = Field(default="fail", description="a corrupt/unreadable video fails the job, or is skipped and reported")
    batch_size: int = Field(default=8, ge=1, description="snippets per backbone call")
    chunk_snippets: int = Field(default=4, ge=1, description="snippets per decoded block (bounds decoder memory)")
    decoders: int | None = Field(default=None, ge=1, description="concurrent decode tasks (default: Ray's choice)")
    actors: int = Field(default=1, ge=1, description="backbone actors in the pool")
    use_gpu: bool | None = Field(default=None, description="one GPU per backbone actor (default: when the cluster has GPUs)")
    cpus_per_actor: float = Field(default=1.0, gt=0.0, description="CPUs reserved per backbone actor (also its torch threads)")
    gt_end_inclusive: bool = Field(default=True, description="annotation intervals end on their last abnormal frame (UCF-Crime); false: end is exclusive")
    min_decoded_fraction: float = Field(
        default=0.95, ge=0.0, le=1.0, description="a video decoding to fewer of the frames its header promises is truncated (0: no check)")
    part_bytes: int = Field(default=128 << 20, ge=1, description="target size of the corpus part files")

    @model_validator(mode="after")
    def _crop_fits(self) -> VideoConfig:
        if self.crop_size > self.resize:
            raise ValueError(f"video.crop_size ({self.crop_size}) must not exceed video.resize ({self.resize})")
        return self


class ZxVADConfig(Section):
    """Zero-shot cross-domain zxVAD on raw frames (``jobs/zxvad.py``), ../shared/specs/zxvad.md.

    Defaults are the spec's (§11); ``A<n>`` names the spec ambiguity a field resolves."""

    # data (§6.1)
    frame_size: tuple[int, int] = Field(default=(256, 256), description="(H, W) every frame is resized to")
    gray: bool = Field(default=False, description="read frames as grayscale, replicated to 3 channels (Ped1/Ped2)")
    clip_len: int = Field(default=4, ge=1, description="T: input frames of G (plus one target frame)")
    max_frames: int | None = Field(default=None, ge=5, description="decode at most this many frames per video")
    donor_uri: str | None = Field(default=None, description="task-irrelevant donor videos for O (default: the source)")
    # generator (§4.1-4.2)
    base_channels: int = Field(default=64, ge=1, description="U-Net width (64 = the spec's 8,731,011 parameters)")
    memory_items: int = Field(default=2000, ge=1, description="K: memory items")
    shrink_lambda: float = Field(default=0.0005, ge=0, description="lambda: hard-shrinkage threshold")
    memory_sim: Literal["cosine", "dot"] = Field(default="cosine", description="A7: addressing similarity (MemAE code: dot)")
    use_memory: bool = Field(default=True, description="memory module at the bottleneck (Fig. 5b ablation: off)")
    # discriminator / normalcy classifier (§4.3-4.4)
    disc_channels: tuple[int, int, int, int] = Field(default=(128, 256, 512, 512), description="A8: PixelDiscriminator widths")
    use_nc: bool = Field(default=True, description="train the Normalcy Classifier (off: the prediction-only ablation)")
    use_gan: bool = Field(default=True, description="train the discriminator D")
    # pseudo-anomaly synthesis O (§3)
    r_arch: Literal["resnet50", "resnet152"] = Field(default="resnet50", description="A19: untrained CNN R")
    r_layer: Literal["layer2", "layer3", "layer4"] = Field(default="layer4", description="R feature map (layer4: 8x8 at 256x256)")
    attn_norm: Literal["minmax", "max"] = Field(default="minmax", description="A2: normalisation before the threshold")
    mask_threshold: float = Field(default=0.1, ge=0, le=1, description="sigma: object-mask threshold")
    mix: Literal["object", "cutmix", "mixup"] = Field(default="object", description="Fig. 5c: paste strategy of O")
    paste_base: Literal["input", "prediction"] = Field(
        default="input",
        description="frame O pastes into: one of G's real input frames (the paper, §3.4/A4) or G's detached "
        "prediction v^ (§6.3 note: N then cannot tell pseudo-anomalies from predictions by sharpness alone)")
    # loss weights (§5)
    w_mem: float = Field(default=0.0025, ge=0, description="alpha_MEM")
    w_adv_d: float = Field(default=0.05, ge=0, description="alpha_D")
    w_adv_n: float = Field(default=0.5, ge=0, description="alpha_N")
    w_n: float = Field(default=1.0, ge=0, description="alpha_n (L_N)")
    w_rn: float = Field(default=0.01, ge=0, description="alpha_rn (L_RN)")
    w_aa: float = Field(default=1.0, ge=0, description="alpha_aa (L_AA)")
    w_raa: float = Field(default=1.0, ge=0, description="alpha_raa (L_RAA)")
    arc_scale: float = Field(default=64.0, gt=0, description="ArcFace scale s")
    arc_margin_deg: float = Field(default=28.6, ge=0, description="ArcFace margin m (degrees)")
    augment: Literal["reproduction", "kornia-doc"] = Field(default="reproduction", description="A13: parameters of g")
    # optimisation (§6.2)
    batch_size: int = Field(default=8, ge=1)
    iterations: int = Field(default=5000, ge=1)
    lr_g: float = Field(default=2e-4, gt=0)
    lr_d: float = Field(default=2e-5, gt=0)
    lr_n: float = Field(default=2e-5, gt=0)
    seed: int = Field(default=0)
    checkpoint_every: int = Field(default=500, ge=1)
    log_every: int = Field(default=50, ge=1)
    # scoring (§7.1)
    drop_first: int | None = Field(default=None, ge=0, description="frames dropped per test video (default: clip_len)")
    per_video_norm: bool = Field(default=True, description="A17: per-video min-max PSNR normalisation")


class Config(Section):
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    bn_wvad: BNWVADConfig = Field(default_factory=BNWVADConfig)
    como: CoMoConfig = Field(default_factory=CoMoConfig)
    mmil: MMILConfig = Field(default_factory=MMILConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    uvad: UVADConfig = Field(default_factory=UVADConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    zxvad: ZxVADConfig = Field(default_factory=ZxVADConfig)


#: Config fields that cannot change a trained model's weights, left out of its identity
#: (:func:`omnivad.protocols.runner.config_hash`). Everything else is in the key, so a new field or section is
#: covered without being listed anywhere. A whole section is named by its name, a field by ``section.field``.
IDENTITY_EXCLUDED: dict[str, str] = {
    "corpus.uri": "a location; the corpus content is in the key as its fingerprint",
    "corpus.synth_if_missing": "only decides whether a missing demo corpus is made",
    "corpus.verify": "only checks the parts' recorded sha256 while reading (a mismatch is an error)",
    "storage": "output locations",
    "ray": "the Ray address and the embedded Ray's CPUs",
    "protocol": "which runs a job plans; each run's own name (stage, fold, target) and split ids identify it",
    "train.log_every": "log cadence",
    "train.checkpoint_every": "checkpoint cadence (a resumed run replays the same data and RNG: same weights)",
    "train.max_failures": "recovery restarts from the latest checkpoint (same weights)",
    "scaling.cpus_per_worker": "placement",
    "scaling.gpus_per_worker": "placement",
    "scaling.resources_per_worker": "placement",
    "scaling.max_concurrent_runs": "how many runs share the cluster",
    "metrics.domain_metric": "which number a table shows first",
    "tune": "the search driver (each trial's sampled values are written into the fields they set)",
}


def identity_fields(cfg: Config) -> dict[str, Any]:
    """The resolved config minus :data:`IDENTITY_EXCLUDED`: what shapes a trained model."""
    data = dump(cfg)
    for path in IDENTITY_EXCLUDED:
        section, _, name = path.partition(".")
        if not name:
            data.pop(section)
        else:
            data[section].pop(name)
    return data


#: Applied under the defaults when a job gets neither ``--config`` nor ``--corpus`` (the demo corpus):
#: a few minutes on 2 CPUs instead of the paper's 15k iterations at lr 5e-5.
DEMO_PROFILE: dict[str, Any] = {
    "train": {"steps": 600, "lr": 1e-3, "eval_every": 100, "checkpoint_every": 200, "log_every": 100,
              "finetune_steps": 200, "e4_steps": 200},
    "protocol": {"folds": 1},
}


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        got = err.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{got_s}")
    return f"invalid config{origin}: " + "; ".join(lines)


_EXP_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: ``3``, ``1e-4``, ``true``, ``[a, b]``, ``null``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 (PyYAML) reads "1e-4" (no dot) as a string; read it as the float it is meant to be.
    if isinstance(value, str) and _EXP_FLOAT.match(value.strip()):
        return float(value)
    return value


def flag_overrides(flags: dict[str, Any]) -> list[str]:
    """A job's own command-line flags as ``--set`` overrides (flags left unset, None, are skipped)."""
    return [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]


def apply_override(data: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: empty field name in {key!r}")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {assignment!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = parse_value(value)


def read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p}: not found")
    if not p.is_file():
        raise ConfigError(f"config file {p}: is a directory, not a YAML/JSON file" if p.is_dir()
                          else f"config file {p}: not a regular file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {p}: cannot parse: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping at the top level")
    return data


def load(path: str | Path | None = None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> Config:
    """Defaults ← ``base`` ← file ← overrides, validated."""
    data: dict[str, Any] = json.loads(json.dumps(base)) if base else {}
    if path:
        _deep_merge(data, read_file(path))
    for o in overrides or []:
        apply_override(data, o)
    origin = f" ({path})" if path else ""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None
    check_registered(cfg, origin)
    return cfg


def check_registered(cfg: Config, origin: str = "") -> None:
    """Every name that must be registered (``model.method``, ``model.trunk``, ``video.backbone``) is, checked when
    the config is resolved: before Ray starts or any data is read. The error names the field and the known names."""
    from omnivad.methods.registry import get_method
    from omnivad.methods.trunks import trunk_entry
    from omnivad.video.backbones import backbone_names

    try:
        get_method(cfg.model.method)
        trunk_entry(cfg.model.trunk)
    except ConfigError as exc:
        raise ConfigError(f"invalid config{origin}: {exc}") from None
    if cfg.video.backbone not in backbone_names():
        raise ConfigError(f"invalid config{origin}: video.backbone: unknown backbone {cfg.video.backbone!r} "
                          f"(known: {', '.join(backbone_names())})")


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


def dump(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (saved next to every result)."""
    return cfg.model_dump(mode="json")


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(dump(cfg), sort_keys=False)
