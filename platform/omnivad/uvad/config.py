"""The ``uvad`` config section (unsupervised wOCC–WS interleaving), registered here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from omnivad.errors import ConfigError
from omnivad.sections import Section, register_check, register_section


class UVADConfig(Section):
    """Unsupervised wOCC–WS interleaving (``jobs/uvad.py``), ../shared/specs/wocc_ws.md."""

    occ: Literal["ae", "flow", "stg-nf"] = Field(default="ae", description="wOCC model: feature AE (§8), feature flow, or STG-NF on pose tracks (§3.1)")
    ws: str = Field(default="rtfm", description="WS model: rtfm (RTFM, §3.3) or a registered WS model, e.g. mil (the single-head MIL network on pseudo bags)")
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
    occ_labels: Literal["soft", "hard"] = Field(
        default="soft",
        description="Table 4/§7: soft = wOCC weights 1 - w from the WS scores (Eq. 6); hard = plain OCC: objects in "
        "the WS top ceil(Q*N) snippets get weight 0, the rest 1 (module 1: Beta draws thresholded at the Q quantile)",
    )
    threshold: Literal["adaptive", "fixed"] = Field(
        default="adaptive",
        description="Table 4/§7: adaptive T_k (Eq. 8), or fixed T = ceil(Q*N) in every module (same module schedule)",
    )
    ws_input: Literal["crops", "mean"] = Field(
        default="crops",
        description="§3.3: the WS model sees every crop of a bag's snippets, (crops, 16, C), scores averaged over "
        "crops; mean = the crop-averaged snippet features",
    )
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
    executor: Literal["local", "ray"] = Field(
        default="ray", description="local (in-process, domains one after the other) or Ray (one worker group, domains in parallel)")
    parallel_domains: int | None = Field(
        default=None, ge=1, description="Ray executor: at most this many domains at once (None: as many as free CPUs / scaling.cpus_per_worker)")


@register_check
def _check_ws(cfg: Any) -> None:
    from omnivad.uvad.ws import ws_names

    if cfg.uvad.ws not in ws_names():
        raise ConfigError(f"uvad.ws: unknown WS model {cfg.uvad.ws!r} (known: {', '.join(ws_names())})")


register_section("uvad", UVADConfig)
