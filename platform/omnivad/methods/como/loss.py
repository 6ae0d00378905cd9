"""CLAV + CoMo losses and test score (spec ``clav_como.md`` §3, readings §8.4, §8.5, §8.11, §8.13–§8.15).

Shapes: B videos, K crops, T snippets, D features, st graph states. The network runs on every crop (padded crops
repeat crop 0 and are masked out of every average). S and S_R are averaged over each video's real crops before
top-K selection and L_mil (§8.4); L_dist, L_cs, L_int and L_obj are computed per crop with the crop-averaged
top-K indices and averaged over the real crops.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from omnivad.methods.base import unwrap_as
from omnivad.methods.como.model import CLAVCoMoNet

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.como.config import CoMoConfig
    from omnivad.methods.base import Batch

_LOG = logging.getLogger("omnivad.como")
_SAID: set[str] = set()


def unwrap(model: torch.nn.Module) -> CLAVCoMoNet:
    return unwrap_as(model, CLAVCoMoNet, "como")


def say_once(message: str) -> None:
    """Log ``message`` once per process (why a loss term is off)."""
    if message not in _SAID:
        _SAID.add(message)
        _LOG.warning(message)


# ---------------------------------------------------------------------------------------------- pieces
def topk_indices(s: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, min(k,T)) of the k largest entries of s (B,T)."""
    return s.topk(min(int(k), s.shape[1]), dim=1).indices


def gather_time(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (..., T, C) at time indices idx (..., J) → (..., J, C)."""
    return x.gather(-2, idx.unsqueeze(-1).expand(*idx.shape, x.shape[-1]))


def crop_mean(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of v (B,K,...) over each video's real crops (mask (B,K))."""
    w = mask.to(v.dtype)
    w = (w / w.sum(1, keepdim=True)).view(*mask.shape, *([1] * (v.dim() - 2)))
    return (v * w).sum(1)


def bce(p: torch.Tensor, y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    p = p.float().clamp(eps, 1 - eps)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def mil_loss(s: torch.Tensor, s_r: torch.Tensor | None, y: torch.Tensor, k: int, mode: str = "per-score") -> torch.Tensor:
    """Eq. 9: BCE over the 2K selected scores, K from S and K from S_R (each by its own ranking), mean over
    videos (``per-score``); ``mean``: BCE of each stream's top-K mean, the two averaged. s, s_r (B,T), y (B,).
    ``s_r`` None (no CoMo module): the K scores of S alone."""
    streams = [s] if s_r is None else [s, s_r]
    tops = [v.gather(1, topk_indices(v, k)) for v in streams]
    top = torch.cat(tops, dim=1)  # (B,2K), or (B,K) without S_R
    yy = y.to(top.dtype).view(-1, 1)
    if mode == "per-score":
        return bce(top, yy.expand_as(top)).mean()
    means = torch.stack([t.mean(1) for t in tops], dim=1)
    return bce(means, yy.expand_as(means)).mean()


def normal_compactness(f: torch.Tensor) -> torch.Tensor:
    """Eq. 5: C_n = (1/T²) Σ_i Σ_j cos(f_i, f_j) = ‖Σ_i f̂_i‖² / T² for f (..., T, D) → (...)."""
    u = F.normalize(f.float(), dim=-1, eps=1e-8).sum(-2)  # cosines in float32 (bf16 autocast)
    return (u * u).sum(-1) / f.shape[-2] ** 2


def relative_distance_loss(
    f: torch.Tensor, idx: torch.Tensor, normal: torch.Tensor, abnormal: torch.Tensor, mask: torch.Tensor,
    margin: float, pairs: str = "paired",
) -> torch.Tensor:
    """Eq. 7: max(C_top + m − C_n, 0) + (1 − C_n), per crop, for f (B,K,T,D) with top-K indices idx (B,J) of each
    video. ``paired``: the b-th normal video with the b-th abnormal one, that normal video's own C_n (§8.13);
    ``all``: every normal × abnormal pair. Averaged over pairs and the crops both videos have."""
    f = f.float()  # cosines and margins in float32 (bf16 autocast)
    c_n = normal_compactness(f[normal])  # (Bn,K)
    f_top = gather_time(f, idx.unsqueeze(1).expand(-1, f.shape[1], -1)).mean(-2)  # (B,K,D)
    fn, fa = F.normalize(f_top[normal], dim=-1, eps=1e-8), F.normalize(f_top[abnormal], dim=-1, eps=1e-8)
    mn, ma = mask[normal], mask[abnormal]
    if pairs == "paired":
        m = min(len(fn), len(fa))
        c_top = (fn[:m] * fa[:m]).sum(-1)  # (m,K)
        loss = F.relu(c_top + margin - c_n[:m]) + (1 - c_n[:m])
        w = (mn[:m] & ma[:m]).to(loss.dtype)
    else:
        c_top = torch.einsum("ikd,jkd->ijk", fn, fa)  # (Bn,Ba,K)
        loss = F.relu(c_top + margin - c_n[:, None]) + (1 - c_n[:, None])
        w = (mn[:, None] & ma[None]).to(loss.dtype)
    return (loss * w).sum() / w.sum().clamp(min=1)


def class_specific_loss(
    model: CLAVCoMoNet, emb: torch.Tensor, feat: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
    detach: bool = False,
) -> torch.Tensor:
    """Eq. 4: L1(CSN(emb_topK^n), F_topK^n) + L1(CSA(emb_topK^a), F_topK^a) over emb (B,K,T,d), feat (B,K,T,D),
    idx (B,J). The target is not detached by default (§8.14). Each class term is a mean over its videos' real
    crops; a class absent from the batch contributes 0."""
    j = idx.unsqueeze(1).expand(-1, emb.shape[1], -1)
    e_top, f_top = gather_time(emb, j), gather_time(feat, j)  # (B,K,J,·)
    if detach:
        f_top = f_top.detach()
    total = emb.new_zeros(())
    for decoder, sel in ((model.csn, y == 0), (model.csa, y == 1)):
        if bool(sel.any()):
            err = (decoder(e_top[sel]) - f_top[sel]).abs().mean(dim=(-1, -2))  # (b,K)
            w = mask[sel].to(err.dtype)
            total = total + (err * w).sum() / w.sum()
    return total


def smoothness(s: torch.Tensor) -> torch.Tensor:
    """Σ_i (S_i − S_{i−1})², mean over videos; s (B,T)."""
    return ((s[:, 1:] - s[:, :-1]) ** 2).sum(1).mean() if s.shape[0] else s.new_zeros(())


def sparsity(s: torch.Tensor) -> torch.Tensor:
    """(1/T) Σ_i |S_i|, mean over videos; s (B,T)."""
    return s.abs().mean(1).mean() if s.shape[0] else s.new_zeros(())


def minmax(v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Min-max normalise v (B,T) to [0,1] within each video (§1.4 step 4); a constant video maps to 0."""
    lo, hi = v.min(1, keepdim=True).values, v.max(1, keepdim=True).values
    return (v - lo) / (hi - lo).clamp(min=eps)


def aux_terms(out: dict[str, torch.Tensor], flow: torch.Tensor | None, objects: torch.Tensor | None, mask: torch.Tensor,
              intensity_norm: str, note: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """L_int = L1(S_int, I) and L_obj = L1(S_obj, O[G]) (§2.4.1-2), means over the real crops (mask (B,K)); a
    missing signal gives 0, said once in the log with ``note`` appended (None: silently, e.g. without CoMo)."""
    w = mask.to(out["s"].dtype)
    l_int = l_obj = out["s"].new_zeros(())
    if flow is not None:
        target = minmax(flow) if intensity_norm == "video-minmax" else flow
        l_int = (((out["s_int"] - target.unsqueeze(1)).abs().mean(-1)) * w).sum() / w.sum()
    elif note is not None:
        say_once("como: the batch has no side_flow (motion intensity) — L_int is off" + note)
    if objects is not None:
        o = gather_time(objects.unsqueeze(1).expand(-1, mask.shape[1], -1, -1), out["ctx_idx"])  # (B,K,Nc,C)
        l_obj = (((out["s_obj"] - o).abs().mean(dim=(-1, -2))) * w).sum() / w.sum()
    elif note is not None:
        say_once("como: the batch has no side_objects (object classes) — L_obj is off" + note)
    return l_int, l_obj


# ---------------------------------------------------------------------------------------------- total
def forward_crops(model: torch.nn.Module, x: torch.Tensor, objects: bool | None = None) -> dict[str, torch.Tensor]:
    """Run the model on every crop of x (B,K,T,C); outputs reshaped to (B,K,...)."""
    b, k, t, c = x.shape
    out = model(x.reshape(b * k, t, c), objects)
    return {name: v.reshape(b, k, *v.shape[1:]) for name, v in out.items()}


def como_loss(model: torch.nn.Module, batch: Batch, cfg: Config) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 10: L_mil + c_s·L_cs + d·[L_dist(F) + L_dist(F_R)] + L_int + L_obj + λ_smooth·L_smooth + λ_sparse·L_sparse.

    L_int needs the batch's ``side["flow"]`` (B,T) and L_obj its ``side["objects"]`` (B,T,C); without them
    (or with ``como.side_signals=ignore``) the term is off, said once in the log and as ``int_on``/``obj_on`` = 0."""
    c: CoMoConfig = cfg.como
    net = unwrap(model)
    x, mask, y = batch.x, batch.mask.to(torch.bool), batch.y
    if c.crops == "random" and x.shape[1] > 1:
        # §8.4 alternative: one real crop per video
        pick = torch.multinomial(mask.float(), 1).squeeze(1)
        x = x[torch.arange(x.shape[0]), pick].unsqueeze(1)
        mask = torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device)
    side = batch.side or {}
    use_side = c.side_signals == "auto"
    flow = side.get("flow") if use_side else None
    objects = side.get("objects") if use_side else None
    if not net.como.use_como:  # Table 2a "w/o CoMo" (§7): no S_R, F_R, L_dist(F_R) or L_aux
        flow = objects = None
    if objects is not None and objects.shape[-1] != net.object_classes:
        raise ValueError(f"como.object_classes is {net.object_classes}, the batch's side_objects have "
                         f"{objects.shape[-1]} classes")
    out = forward_crops(model, x, objects=objects is not None)
    s = crop_mean(out["s"], mask)  # (B,T)
    s_r = crop_mean(out["s_r"], mask) if "s_r" in out else None
    normal, abnormal = y == 0, y == 1

    l_mil = mil_loss(s, s_r, y, c.k, c.mil)
    idx = topk_indices(s, c.k)
    l_cs = class_specific_loss(net, out["emb"], out["feat"], idx, y, mask, c.cs_detach)
    if bool(normal.any()) and bool(abnormal.any()):
        l_dist_f = relative_distance_loss(out["feat"], idx, normal, abnormal, mask, c.distance_margin, c.dist_pairs)
        l_dist_r = (relative_distance_loss(out["f_r"], topk_indices(s_r, c.k), normal, abnormal, mask,
                                           c.distance_margin, c.dist_pairs) if s_r is not None else s.new_zeros(()))
    else:
        l_dist_f = l_dist_r = s.new_zeros(())
    note = ("" if use_side else " (como.side_signals=ignore)") if net.como.use_como else None
    l_int, l_obj = aux_terms(out, flow, objects, mask, c.intensity_norm, note)
    abn = [v[abnormal] for v in (s, s_r) if v is not None]
    l_smooth = sum((smoothness(v) for v in abn), s.new_zeros(()))
    l_sparse = sum((sparsity(v) for v in abn), s.new_zeros(()))
    total = (l_mil + c.cs_weight * l_cs + c.dist_weight * (l_dist_f + l_dist_r) + c.int_weight * l_int
             + c.obj_weight * l_obj + c.smooth_weight * l_smooth + c.sparse_weight * l_sparse)
    logs = {
        "loss": float(total.detach()), "mil": float(l_mil.detach()), "cs": float(l_cs.detach()),
        "dist_f": float(l_dist_f.detach()), "dist_r": float(l_dist_r.detach()), "int": float(l_int.detach()),
        "obj": float(l_obj.detach()), "smooth": float(l_smooth.detach()), "sparse": float(l_sparse.detach()),
        "int_on": float(flow is not None), "obj_on": float(objects is not None),
    }
    return total, logs
