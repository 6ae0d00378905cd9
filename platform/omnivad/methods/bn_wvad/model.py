"""BN-WVAD network (Zhou et al., arXiv 2311.15367; spec ``bn_wvad.md`` §2). Pure torch.

::

    x (N,T,C) → Conv1d(C→512,k3,p1) → ReLU                                   embedding
              → 2 × pre-norm [global+local attention, FF]                    enhancer (UR-DMU, no memory)  X^e (N,T,512)
    X^e → conv1(512→32,k1) = X^h1 → BN1 → ReLU → conv2(32→16,k1) = X^h2 → BN2 → ReLU → conv3(16→1) → sigmoid = p
    DFM_l = Mahalanobis(X^hl; BN_l running mean/var)       test score = p · (DFM_1 + DFM_2)

Every crop is a sample (N = real crops). The enhancer is also registered as the ``bn-wvad`` trunk, so MDVAD's
NullAng/Null heads and AC can sit on it (``model.trunk=bn-wvad``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn



DISTANCES = ("mahalanobis", "euclidean", "cosine", "magnitude")


def dfm(x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor, kind: str = "mahalanobis") -> torch.Tensor:
    """§2.5 Divergence of Feature from Mean of x (..., C) to the running statistics mu, var (C,): (...).

    mahalanobis: sqrt(Σ_c (x_c − μ_c)² / σ²_c) (no epsilon, as the code); euclidean: σ² ≡ 1 (Table 7);
    cosine: 1 − cos(x, μ) (§7.11); magnitude: ‖x‖₂, the feature-magnitude criterion of Table 4."""
    if kind == "mahalanobis":
        return ((x - mu) ** 2 / var).sum(-1).sqrt()
    if kind == "euclidean":
        return ((x - mu) ** 2).sum(-1).sqrt()
    if kind == "cosine":
        return 1 - F.cosine_similarity(x, mu.expand_as(x), dim=-1)
    if kind == "magnitude":
        return x.norm(dim=-1)
    raise ValueError(f"distance: expected one of {DISTANCES}, got {kind!r}")


def local_attention(t: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """§2.2 fixed local matrix G[i,j] = exp(−|i−j|/e), divided as ``G / G.sum(-1)`` (entry (i,j) by row j's sum)."""
    pos = torch.arange(t, device=device, dtype=dtype or torch.float32)
    g = torch.exp(-(pos.view(1, -1) - pos.view(-1, 1)).abs() / math.e)
    return g / g.sum(-1)


class GlobalLocalAttention(nn.Module):
    """§2.2: q,k,v,t = to_qkv(x); per head [softmax(q kᵀ/√d) v, G t] (2·dim_head); heads merged → to_out."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, 4 * inner, bias=False)
        self.to_out = nn.Linear(2 * inner, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v, g = (c.reshape(n, t, self.heads, self.dim_head).transpose(1, 2) for c in self.to_qkv(x).chunk(4, -1))
        a1 = torch.softmax(q @ k.transpose(-1, -2) * self.dim_head**-0.5, dim=-1)
        a2 = local_attention(t, x.device, x.dtype)
        out = torch.cat([a1 @ v, a2 @ g], dim=-1)  # (N, heads, T, 2·dim_head)
        return self.drop(self.to_out(out.transpose(1, 2).reshape(n, t, -1)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm residual block: x = Attn(LN(x)) + x; x = FF(LN(x)) + x."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), GlobalLocalAttention(dim, heads, dim_head, dropout)
        self.norm2, self.ff = nn.LayerNorm(dim), FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(self.norm1(x)) + x
        return self.ff(self.norm2(x)) + x


class BNWVADEncoder(nn.Module):
    """§2.2 enhancer: x (N,T,C) → X^e (N,T,embed_dim). No activation after the last block."""

    def __init__(self, feature_dim: int, embed_dim: int = 512, depth: int = 2, heads: int = 4, dim_head: int = 128,
                 mlp_dim: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.feature_dim, self.out_dim = int(feature_dim), int(embed_dim)
        self.embed = nn.Conv1d(feature_dim, embed_dim, kernel_size=3, stride=1, padding=1)
        self.blocks = nn.ModuleList(Block(embed_dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.embed(x.transpose(1, 2))).transpose(1, 2)
        for blk in self.blocks:
            h = blk(h)
        return h


class NormalHead(nn.Module):
    """§2.3: returns the pre-BN hidden features X^h1 (N,C1,T), X^h2 (N,C2,T) and the classifier p (N,T)."""

    def __init__(self, in_dim: int = 512, ratios: tuple[int, int] = (16, 32), momentum: float = 0.1) -> None:
        super().__init__()
        c1, c2 = in_dim // ratios[0], in_dim // ratios[1]
        if c1 < 1 or c2 < 1:
            raise ValueError(f"head_ratios {ratios}: embed_dim {in_dim} gives an empty hidden layer")
        self.conv1, self.bn1 = nn.Conv1d(in_dim, c1, 1), nn.BatchNorm1d(c1, momentum=momentum)
        self.conv2, self.bn2 = nn.Conv1d(c1, c2, 1), nn.BatchNorm1d(c2, momentum=momentum)
        self.conv3 = nn.Conv1d(c2, 1, 1)

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = self.conv1(e)
        h2 = self.conv2(F.relu(self.bn1(h1)))
        p = torch.sigmoid(self.conv3(F.relu(self.bn2(h2)))).squeeze(1)
        return h1, h2, p


class BNWVADNet(nn.Module):
    """Encoder + normal head; one (single) head shared by every domain. ``domains`` only names the training
    domains (per-domain selection ratios) and travels with ``hparams`` in the extra state."""

    def __init__(self, feature_dim: int, domains: list[str], embed_dim: int = 512, depth: int = 2, heads: int = 4,
                 dim_head: int = 128, mlp_dim: int = 512, dropout: float = 0.0, head_ratios: tuple[int, int] = (16, 32),
                 bn_momentum: float = 0.1, distance: str = "mahalanobis", score: str = "product") -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance: expected one of {DISTANCES}, got {distance!r}")
        self.hparams: dict[str, Any] = {
            "feature_dim": int(feature_dim), "embed_dim": int(embed_dim), "depth": int(depth), "heads": int(heads),
            "dim_head": int(dim_head), "mlp_dim": int(mlp_dim), "dropout": float(dropout),
            "head_ratios": [int(r) for r in head_ratios], "bn_momentum": float(bn_momentum),
        }
        self.feature_dim = int(feature_dim)
        self.distance, self.score_rule = distance, score
        self._domains = [str(d) for d in domains]
        self.encoder = BNWVADEncoder(feature_dim, embed_dim, depth, heads, dim_head, mlp_dim, dropout)
        self.head = NormalHead(embed_dim, tuple(head_ratios), bn_momentum)  # type: ignore[arg-type]

    @property
    def domains(self) -> list[str]:
        return list(self._domains)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (N,T,C) → h1 (N,T,C1), h2 (N,T,C2) pre-BN hidden features, p (N,T), dfm1, dfm2 (N,T).

        The DFMs use the BN running statistics after this forward (in training mode already updated with
        this batch, §2.5 timing)."""
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"expected x of shape (N, T, {self.feature_dim}), got {tuple(x.shape)}")
        h1, h2, p = self.head(self.encoder(x).transpose(1, 2))
        h1, h2 = h1.transpose(1, 2), h2.transpose(1, 2)
        out = {"h1": h1, "h2": h2, "p": p}
        for i, (h, bn) in enumerate(((h1, self.head.bn1), (h2, self.head.bn2)), start=1):
            out[f"dfm{i}"] = dfm(h, bn.running_mean, bn.running_var, self.distance)
        return out

    def snippet_scores(self, x: torch.Tensor, score: str | None = None) -> torch.Tensor:
        """§2.8 per-crop scores (N,T): p·(DFM1+DFM2) ("product"), p ("classifier") or DFM1+DFM2 ("dfm");
        default: the model's ``score_rule`` (``bn_wvad.score``)."""
        score = score or self.score_rule
        out = self(x)
        d = out["dfm1"] + out["dfm2"]
        if score == "product":
            return out["p"] * d
        if score == "classifier":
            return out["p"]
        if score == "dfm":
            return d
        raise ValueError(f"score: expected product, classifier or dfm, got {score!r}")

    def get_extra_state(self) -> dict[str, Any]:
        return {**self.hparams, "domains": list(self._domains), "distance": self.distance, "score": self.score_rule}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise ValueError(f"BNWVADNet extra state: expected a mapping, got {type(state).__name__}")
        for key, mine in self.hparams.items():
            if key in state and state[key] != mine:
                raise ValueError(f"BNWVADNet checkpoint mismatch on {key}: checkpoint {state[key]!r}, model {mine!r}")
        # distance and score are hyper-parameters of whoever built this model; the domain names are those of the
        # run that trained the weights (fine-tuning keeps them)
        self._domains = [str(d) for d in state.get("domains", self._domains)]

    def extra_repr(self) -> str:
        return f"distance={self.distance}, domains={self._domains}"
