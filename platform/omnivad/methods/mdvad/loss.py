"""MDVAD losses (spec ``mdvad.md`` §5, §6.5, §7; readings A1, A5–A9, A12, A14, A18, A19, A29).

Shapes: B videos, K crops, T snippets, M heads. All MIL-type losses are means over (videos × selected snippets)
and L_AC is a mean over (videos × T) (A9). Crop handling (A12): the model runs on the real crops only, head
outputs and s^AC are averaged over each video's real crops, and everything else works on the averages.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from omnivad.methods.crops import forward_crops as _forward_crops

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch
    from omnivad.methods.mdvad.model import MDVADNet

FIXED_BAND = (0.3, 0.7)  # Table A3 "Fixed" rule, exclusive bounds (A19)


# ---------------------------------------------------------------------------------------------- helpers
def unwrap(model: torch.nn.Module) -> MDVADNet:
    """The MDVADNet inside a DistributedDataParallel-style wrapper (``.module``), or the model itself."""
    while not hasattr(model, "head") and hasattr(model, "module"):
        model = model.module
    return model  # type: ignore[return-value]


def forward_crops(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None,
                  **kwargs: object) -> dict[str, torch.Tensor]:
    """MDVAD's crop handling (A12) of x (B,K,T,C) → outputs (B,T,...): with the model's ``crop_average ==
    "outputs"`` (default) the network runs on every real crop and its outputs are averaged
    (:func:`omnivad.methods.crops.forward_crops`); with ``"inputs"`` the real crops' features are averaged and the
    network runs once per video (the conflict study's reference network, issue 17)."""
    if getattr(unwrap(model), "crop_average", "outputs") != "inputs":
        return _forward_crops(model, x, mask, **kwargs)
    if x.dim() != 4:
        raise ValueError(f"expected x of shape (B, K, T, C), got {tuple(x.shape)}")
    if mask is None:
        return model(x.mean(1), **kwargs)
    w = mask.to(device=x.device, dtype=x.dtype).view(*mask.shape, 1, 1)
    if bool((w.sum(1) == 0).any()):
        raise ValueError("every video needs at least one real crop (mask all False for some video)")
    return model((x * w).sum(1) / w.sum(1), **kwargs)


def topk_indices(s: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, min(k,T)) of the k largest entries of s (B, T) along time (Ω_k)."""
    return s.topk(min(int(k), s.shape[1]), dim=1).indices


def add_margin(c: torch.Tensor, m: float) -> torch.Tensor:
    """cos(θ + m) for c = cos θ (ArcFace). Where θ + m > π (c < cos(π − m)) use c − m·sin m (A29)."""
    c = c.clamp(-1 + 1e-7, 1 - 1e-7)
    phi = c * math.cos(m) - torch.sqrt(1 - c * c) * math.sin(m)
    return torch.where(c > math.cos(math.pi - m), phi, c - m * math.sin(m))


def combine_heads(s_all: torch.Tensor, dom: torch.Tensor) -> torch.Tensor:
    """Per video, the own-domain column of s_all (B,T,M) (Eq. 2/4 "Null" rule), or the max over heads where
    dom == -1 (unseen target, §6.5). Unselected heads receive exactly zero gradient."""
    B, T, M = s_all.shape
    dom = dom.to(device=s_all.device, dtype=torch.long)
    if bool(((dom < -1) | (dom >= M)).any()):
        raise ValueError(f"dom: expected values in [-1, {M - 1}], got {dom.tolist()}")
    seen = dom >= 0
    out = s_all.new_empty(B, T)
    if bool(seen.any()):
        idx = dom[seen].view(-1, 1, 1).expand(-1, T, 1)
        out[seen] = s_all[seen].gather(2, idx).squeeze(2)
    if bool((~seen).any()):
        out[~seen] = s_all[~seen].max(dim=2).values
    return out


def _bce(p: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Elementwise BCE on probabilities, in float32 (autocast-safe, unlike F.binary_cross_entropy)."""
    p, y = p.float(), y.float()
    return -(y * torch.log(p.clamp(min=eps)) + (1 - y) * torch.log((1 - p).clamp(min=eps)))


def _weighted_mean(loss: torch.Tensor, idx: torch.Tensor, snippet_weight: torch.Tensor | None) -> torch.Tensor:
    if snippet_weight is not None:
        loss = loss * snippet_weight.detach().gather(1, idx).to(loss.dtype)
    return loss.mean()


# ---------------------------------------------------------------------------------------------- MIL losses
def mil_loss(s: torch.Tensor, y: torch.Tensor, k: int, snippet_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 1: BCE of the top-K scores s (B,T) (probabilities) against the video label y (B,), mean over B×K.

    ``snippet_weight`` (B,T), detached, multiplies the loss of each selected snippet (§5.6)."""
    idx = topk_indices(s, k)
    s_k = s.gather(1, idx)
    yy = y.to(s.dtype).view(-1, 1).expand_as(s_k)
    loss = _bce(s_k, yy)
    return _weighted_mean(loss, idx, snippet_weight)


def null_mil_loss(
    abn_all: torch.Tensor, y: torch.Tensor, dom: torch.Tensor, k: int, snippet_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 2 (A1): each video is scored by its own domain's head only; dom == -1 uses the max over heads."""
    return mil_loss(combine_heads(abn_all, dom), y, k, snippet_weight)


def nullang_mil_loss(
    cos_a_all: torch.Tensor,
    cos_n_all: torch.Tensor,
    y: torch.Tensor,
    dom: torch.Tensor,
    k: int,
    margin: float = 0.3,
    scale: float = 1.0,
    topk_score: str = "abnormal",
    snippet_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 4: 2-class softmax over [cos_n, cos_a] × scale with the angular margin on the true class, on the top-K
    snippets of the own-domain head (max over heads, separately for cos_a and cos_n, where dom == -1).

    ``topk_score``: "abnormal" picks Ω_k on cos_a (A6); "combined" on cos_a + 1 − cos_n."""
    ca = combine_heads(cos_a_all.float(), dom)  # float32: the margin's sqrt(1 - c²) needs it under bf16 autocast
    cn = combine_heads(cos_n_all.float(), dom)
    if topk_score == "abnormal":
        sel = ca
    elif topk_score == "combined":
        sel = ca + 1 - cn
    else:
        raise ValueError(f"topk_score: expected 'abnormal' or 'combined', got {topk_score!r}")
    idx = topk_indices(sel.detach(), k)
    ca_k, cn_k = ca.gather(1, idx), cn.gather(1, idx)
    yy = (y.view(-1, 1) > 0.5).expand_as(ca_k)
    logit_a = torch.where(yy, add_margin(ca_k, margin), ca_k)
    logit_n = torch.where(yy, cn_k, add_margin(cn_k, margin))
    logits = torch.stack([logit_n, logit_a], -1).float() * scale  # class 1 = abnormal
    loss = F.cross_entropy(logits.reshape(-1, 2), yy.reshape(-1).long(), reduction="none").view_as(ca_k)
    return _weighted_mean(loss, idx, snippet_weight)


# ---------------------------------------------------------------------------------------------- AC
@torch.no_grad()
def ac_pseudo_labels(
    abn_all: torch.Tensor,
    rule: str = "diff",
    tau: float = 0.3,
    band: tuple[float, float] = (0.4, 0.7),
    single: bool = False,
) -> torch.Tensor:
    """y^AC (B,T) float {0,1}, detached, from the abnormal scores of all heads abn_all (B,T,M).

    single=True (MIL+AC): 1 where s^a ∈ [band] (inclusive; first head). Otherwise by ``rule``:
    diff (Eq. 6): max_d − min_d > τ; std: population std over heads > τ; fixed (A19): any head in (0.3, 0.7)."""
    a = abn_all.detach()
    if single:
        s = a[..., 0]
        return ((s >= band[0]) & (s <= band[1])).to(a.dtype)
    if rule == "diff":
        lab = (a.max(-1).values - a.min(-1).values) > tau
    elif rule == "std":
        lab = a.std(-1, correction=0) > tau
    elif rule == "fixed":
        lab = ((a > FIXED_BAND[0]) & (a < FIXED_BAND[1])).any(-1)
    else:
        raise ValueError(f"ac_rule: expected diff, std or fixed, got {rule!r}")
    return lab.to(a.dtype)


def focal_loss(p: torch.Tensor, y: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25) -> torch.Tensor:
    """Focal loss on probabilities p against {0,1} targets y, mean over all elements.

    FL = −α_t (1 − p_t)^γ log p_t with p_t = p if y=1 else 1−p, α_t = α if y=1 else 1−α (α < 0: no weighting),
    i.e. torchvision's ``sigmoid_focal_loss`` with the sigmoid already applied."""
    p, y = p.float(), y.float()
    ce = _bce(p, y)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.mean()


# ---------------------------------------------------------------------------------------------- total
def ac_weight_mode(mode: str, ac_on: bool, adapting: bool) -> str | None:
    """How §5.6 weights abnormal videos' selected-snippet losses now: None, "mul" (× s^AC) or "one-plus".

    Only AC variants (ac_on) weight; "adaptation" and "one-plus" act only while adapting (E3/E4, A7)."""
    if not ac_on or mode == "off":
        return None
    if mode == "always":
        return "mul"
    if mode == "adaptation":
        return "mul" if adapting else None
    if mode == "one-plus":
        return "one-plus" if adapting else None
    raise ValueError(f"ac_abnormal_weight: unknown mode {mode!r}")


def snippet_weights(s_ac: torch.Tensor, y: torch.Tensor, how: str | None) -> torch.Tensor | None:
    """(B,T) detached weights: s^AC (or 1 + s^AC) for abnormal videos, 1 for normal ones; None for no weighting."""
    if how is None:
        return None
    w = s_ac.detach()
    if how == "one-plus":
        w = 1 + w
    return torch.where(y.view(-1, 1) > 0.5, w, torch.ones_like(w))


def mdvad_loss(model: MDVADNet, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """L = L_{MIL | Null-MIL | NullAng-MIL} + λ·L_AC (λ·L_AC only when cfg.mdvad.ac); head type from the model.

    ``model`` may be a DDP wrapper: the forward goes through it, attributes come from the wrapped net."""
    lc = cfg.mdvad
    # Without the AC loss the AC classifier is not run (it is most of the step's compute at small C); its
    # parameters stay in the graph with zero gradient (DDP without find_unused_parameters).
    out = forward_crops(model, batch.x, batch.mask, with_ac=lc.ac)
    net = unwrap(model)
    head = net.head
    abn = out["abn"]
    y = batch.y.to(device=abn.device, dtype=abn.dtype)
    dom = batch.dom.to(abn.device)
    s_ac = out.get("ac")
    how = ac_weight_mode(lc.ac_abnormal_weight, lc.ac, adapting)
    weight = snippet_weights(s_ac, y, how) if s_ac is not None else None

    if head == "single":
        l_mil = mil_loss(abn[..., 0], y, lc.k, weight)
    elif head == "null":
        l_mil = null_mil_loss(abn, y, dom, lc.k, weight)
    else:
        l_mil = nullang_mil_loss(
            abn, out["nrm"], y, dom, lc.k, lc.angular_margin, lc.ang_scale, lc.topk_score, weight
        )

    y_ac = ac_pseudo_labels(abn, lc.ac_rule, lc.tau, tuple(lc.ac_band), single=head == "single")
    logs = {"mil": float(l_mil.detach()), "ac_pos_rate": float(y_ac.mean())}
    if lc.ac:
        l_ac = focal_loss(s_ac, y_ac, lc.focal_gamma, lc.focal_alpha)
        total = l_mil + lc.ac_weight * l_ac
        logs["ac"] = float(l_ac.detach())
    else:
        total = l_mil + 0.0 * sum(p.sum() for p in net.ac_head.parameters())
    logs = {"loss": float(total.detach()), **logs}
    return total, logs
