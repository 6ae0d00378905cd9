"""BN-WVAD selection and losses (spec ``bn_wvad.md`` §2.6–§2.7, §7.2, §7.6).

Crops are samples (§1.3, §7.15): the real crops of the batch's videos run through the model together (one BatchNorm
batch), each with its video's label (``bn_wvad.batching=videos``), or 64 + 64 of them drawn as the public code's
batches (``crop_samples``, :func:`crop_sample_batch`). Shapes: N samples, T snippets, C hidden channels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnivad.methods.bn_wvad.model import dfm

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.methods.base import Batch
    from omnivad.methods.bn_wvad.model import BNWVADNet


def selection_counts(n_abnormal: int, t: int, rho_s: float, rho_b: float) -> tuple[int, int]:
    """(⌊ρ_s·T⌋ per abnormal sample, ⌊ρ_b·B_a·T⌋ over the batch), computed as the code does (int of a float)."""
    return int(t * rho_s), int(n_abnormal * t * rho_b)


def sbs_mask(d_abn: torch.Tensor, rho_s: float, rho_b: float) -> torch.Tensor:
    """§2.6 SBS = SLS ∪ BLS over abnormal DFMs d_abn (B_a,T): a bool mask (B_a,T). ρ=0 switches a part off."""
    b, t = d_abn.shape
    k_s, k_b = selection_counts(b, t, rho_s, rho_b)
    d = d_abn.detach()
    m_s = torch.zeros_like(d, dtype=torch.bool)
    if k_s > 0:
        m_s.scatter_(1, d.topk(k_s, dim=1).indices, True)
    m_b = torch.zeros(d.numel(), dtype=torch.bool, device=d.device)
    if k_b > 0:
        m_b[d.reshape(-1).topk(k_b).indices] = True
    return m_s | m_b.view(b, t)


def select(h_nrm: torch.Tensor, d_nrm: torch.Tensor, h_abn: torch.Tensor, d_abn: torch.Tensor, rho_s: float,
           rho_b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """§2.6 (X^n_dfm, X^a_dfm), both (K,C): the SBS-selected abnormal features in raster order and, per normal sample,
    its top-k_n DFM features (k_n = ⌊K/B_n⌋ + 1) listed rank-major and cut to K (§7.6 pairing).

    h_* (B,T,C) pre-BN features, d_* (B,T) their DFMs. Indices carry no gradient; the features keep theirs."""
    bn, t, c = h_nrm.shape
    m = sbs_mask(d_abn, rho_s, rho_b)
    xa = h_abn.reshape(-1, c)[m.reshape(-1)]
    k = xa.shape[0]
    kn = min(k // bn + 1, t)
    idx = d_nrm.detach().topk(kn, dim=1).indices  # (B_n, k_n)
    xn = h_nrm.gather(1, idx.unsqueeze(-1).expand(-1, -1, c)).transpose(0, 1).reshape(-1, c)[:k]
    if xn.shape[0] < k:
        raise ValueError(f"BN-WVAD selection: {bn} normal samples × {t} snippets cannot pair {k} abnormal snippets")
    return xn, xa


def mpp_loss(xn: torch.Tensor, xa: torch.Tensor, mu: torch.Tensor, var: torch.Tensor, margin: float = 1.0,
             distance: str = "mahalanobis") -> torch.Tensor:
    """§2.7(b) Eq. 5: mean_k max(0, m + DFM(x^n_k) − DFM(x^a_k)); anchor μ̂ (running mean), normals positive."""
    if xa.shape[0] == 0:
        return xa.sum() * 0.0
    xn, xa = xn.float(), xa.float()  # the feature distance in float32 (bf16 autocast)
    return torch.relu(margin + dfm(xn, mu, var, distance) - dfm(xa, mu, var, distance)).mean()


def normal_loss(p_nrm: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """§2.7(a) Eq. 6: ‖p_b‖₂ (plain L2 norm of the T scores) of each normal sample, mean (code) or sum (Eq. 6)."""
    norms = p_nrm.float().norm(p=2, dim=1)
    if reduction == "mean":
        return norms.mean()
    if reduction == "sum":
        return norms.sum()
    raise ValueError(f"normal_loss: expected mean or sum, got {reduction!r}")


def crop_samples(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The real crops of batch.x (B,K,T,C) as samples (N,T,C), with their labels (N,) and domain indices (N,)."""
    mask = batch.mask.to(device=batch.x.device, dtype=torch.bool)
    if bool((mask.sum(1) == 0).any()):
        raise ValueError("every video needs at least one real crop (mask all False for some video)")
    k = batch.x.shape[1]
    y = batch.y.to(batch.x.device).view(-1, 1).expand(-1, k)[mask]
    dom = batch.dom.to(batch.x.device).view(-1, 1).expand(-1, k)[mask]
    return batch.x[mask], y, dom


def crop_sample_batch(batch: Batch, per_class: int, generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """§1.3/§3 the public code's batches (``bn_wvad.batching=crop_samples``): ``per_class`` normal then ``per_class``
    abnormal (video, crop) samples (N,T,C), with labels (N,) and domain indices (N,), drawn without replacement
    from the real crops of batch.x (B,K,T,C). The draw spreads over videos first (one random crop of every video, in
    random order, then second crops, ...), so with ``per_class`` videos per class each sample is another video's
    crop. A class with fewer real crops gives all of them. The draw uses torch's CPU generator (checkpointed)."""
    mask = batch.mask.detach().to("cpu", torch.bool)
    b, k = mask.shape
    if bool((mask.sum(1) == 0).any()):
        raise ValueError("every video needs at least one real crop (mask all False for some video)")
    vid = torch.arange(b).view(-1, 1).expand(-1, k)[mask]
    crop = torch.arange(k).view(1, -1).expand(b, -1)[mask]
    y_all = batch.y.detach().to("cpu")[vid]
    picks = []
    for label in (0, 1):
        sel = torch.nonzero(y_all.round() == label).view(-1)
        if not len(sel):
            continue
        u = torch.rand(len(sel), generator=generator, dtype=torch.float64)
        order = torch.argsort(vid[sel].double() + u)  # grouped by video, crops in random order
        sv = vid[sel][order]
        pos = torch.arange(len(sv))
        start = torch.ones(len(sv), dtype=torch.bool)
        start[1:] = sv[1:] != sv[:-1]
        rank = pos - torch.cummax(pos * start, dim=0).values  # a crop's position within its video
        u2 = torch.rand(len(sv), generator=generator, dtype=torch.float64)
        picks.append(sel[order][torch.argsort(rank.double() + u2)][:per_class])
    idx = torch.cat(picks)
    v, c = vid[idx].to(batch.x.device), crop[idx].to(batch.x.device)
    return batch.x[v, c], batch.y.to(batch.x.device)[v], batch.dom.to(batch.x.device)[v]


def ratios_for(cfg: Config, domain: str | None) -> tuple[float, float]:
    """(ρ_s, ρ_b) of a domain: ``rho_sample``/``rho_batch`` when set, else the domain's per-dataset default."""
    c = cfg.bn_wvad
    rho_s, rho_b = c.rho_by_domain.get(domain, c.rho_default) if domain is not None else c.rho_default
    return (c.rho_sample if c.rho_sample is not None else rho_s), (c.rho_batch if c.rho_batch is not None else rho_b)


def bn_wvad_loss(model: torch.nn.Module, net: BNWVADNet, batch: Batch, cfg: Config) -> tuple[torch.Tensor, dict[str, float]]:
    """§2.7(c) L = L_nor + λ1·L_mpp(h1) + λ2·L_mpp(h2); ``model`` is what runs forward (maybe a DDP wrapper of net).

    Selection groups: each domain of the batch with its own (ρ_s, ρ_b) (``selection_scope=domain``), or the whole
    batch with ``rho_sample``/``rho_batch`` or ``rho_default`` (``batch``); the MPP mean runs over every group's pairs."""
    c = cfg.bn_wvad
    x, y, dom = crop_sample_batch(batch, c.samples_per_class) if c.batching == "crop_samples" else crop_samples(batch)
    out = model(x)
    nrm = y < 0.5
    if not bool(nrm.any()) or bool(nrm.all()):
        raise ValueError("BN-WVAD needs normal and abnormal videos in every batch")
    l_nor = normal_loss(out["p"][nrm], c.normal_loss)
    groups: list[tuple[torch.Tensor, str | None]] = []
    if c.selection_scope == "batch":
        groups.append((torch.ones_like(nrm), None))
    else:
        names = net.domains
        for d in torch.unique(dom).tolist():
            name = names[d] if 0 <= d < len(names) else None
            groups.append((dom == d, name))
    total = l_nor
    logs = {"nor": float(l_nor.detach())}
    for i, (bn, lam) in enumerate(((net.head.bn1, c.lambda1), (net.head.bn2, c.lambda2)), start=1):
        h, d = out[f"h{i}"], out[f"dfm{i}"]
        xns, xas = [], []
        for g, name in groups:
            rho_s, rho_b = ratios_for(cfg, name)
            gn, ga = g & nrm, g & ~nrm
            if not (bool(gn.any()) and bool(ga.any())):
                continue
            xn, xa = select(h[gn], d[gn], h[ga], d[ga], rho_s, rho_b)
            xns.append(xn)
            xas.append(xa)
        mu, var = bn.running_mean, bn.running_var
        l_mpp = mpp_loss(torch.cat(xns), torch.cat(xas), mu, var, c.mpp_margin, net.distance) if xas else h.sum() * 0.0
        total = total + lam * l_mpp
        logs[f"mpp{i}"] = float(l_mpp.detach())
        logs[f"k{i}"] = float(sum(len(a) for a in xas))
    logs["loss"] = float(total.detach())
    return total, logs
