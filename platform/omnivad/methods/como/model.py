"""CLAV + CoMo network (Cho et al., CVPR 2023; spec ``clav_como.md`` §2). Pure torch.

Per crop, B (N,T,D) snippet features::

    B ─ICA (Conv1d D→2D, split-max)→ F (N,T,D) ─FC1-ReLU-Drop─FC2-ReLU-Drop→ emb (N,T,d) ─FC3-sigmoid→ S (N,T)
    F ─dynamic path: Conv1d(D→512,k1)-ReLU-Conv1d(512→1,k1)-sigmoid→ S_int (N,T)
    F[bottom-N of S_int, time order] ─Conv1d(D→D,k3)-ReLU→ H_ctx (N,Nc,D) ─mean→ F_cont (N,D)
                                                          └─FC-ReLU-FC-sigmoid→ S_obj (N,Nc,C)   [training only]
    P = proj(F) (N,T,n);  V = Pᵀ·state(F)/T;  V_cont = Pᵀ·(1_T ⊗ state_c(F_cont))/T           (n×st graphs)
    R = Fuse(GCN_m(V), GCN_c(V_cont)) (N,n,st);  F_R = P·R (N,T,st) ─FC-sigmoid→ S_R (N,T)

CSN / CSA (the class-specific decoders, emb → D) are used by the loss only. All conv and linear layers are
Xavier-uniform with zero bias (RTFM).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def ica(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Eq. 1-3: Conv1d D→2D over time, split the channels in halves, element-wise max. x (N,T,D) → (N,T,D)."""
    y = conv(x.transpose(1, 2)).transpose(1, 2)
    a, b = y.chunk(2, dim=-1)
    return torch.maximum(a, b)


def context_count(t: int, fraction: float) -> int:
    """N: the number of low-motion snippets of a T-snippet video (int(0.8·T), at least 1; §8.17)."""
    return max(1, int(fraction * t))


class GCN(nn.Module):
    """GloRe graph unit on Z (N,n,st): H = Z + A·Z (node mixing with bias), Z⁰ = ReLU(H)·W (state, no bias)."""

    def __init__(self, nodes: int, states: int) -> None:
        super().__init__()
        self.node = nn.Conv1d(nodes, nodes, kernel_size=1)
        self.state = nn.Linear(states, states, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.state(F.relu(z + self.node(z)))


class CoMo(nn.Module):
    """ICA + the Context-Motion Interrelation module (§2.2, §2.4): the domain-agnostic part, from snippet features
    to the motion stream F and the relational feature F_R. ``streams`` returns every intermediate."""

    def __init__(
        self,
        feature_dim: int,
        *,
        ica_kernel: int = 3,
        nodes: int = 32,
        states: int = 128,
        context_fraction: float = 0.8,
        context_nodes: str = "broadcast",
        fusion: str = "nodes",
        ica: bool = True,
        como: bool = True,
    ) -> None:
        super().__init__()
        if context_nodes not in ("broadcast", "own-projection"):
            raise ValueError(f"context_nodes: expected 'broadcast' or 'own-projection', got {context_nodes!r}")
        if fusion not in ("nodes", "states"):
            raise ValueError(f"fusion: expected 'nodes' or 'states', got {fusion!r}")
        if ica_kernel not in (1, 3):
            raise ValueError(f"ica_kernel: expected 1 or 3, got {ica_kernel}")
        d = self.feature_dim = int(feature_dim)
        self.states = int(states)
        self.context_fraction = float(context_fraction)
        self.context_nodes = context_nodes
        self.fusion = fusion
        self.use_ica, self.use_como = bool(ica), bool(como)  # Table 2a ablations: no ICA (F = B), no CoMo (F only)
        if self.use_ica:
            self.ica_conv = nn.Conv1d(d, 2 * d, kernel_size=ica_kernel, padding=ica_kernel // 2)
        if self.use_como:
            self._build_como(d, nodes, states, context_nodes, fusion)
        xavier_init(self)

    def _build_como(self, d: int, nodes: int, states: int, context_nodes: str, fusion: str) -> None:
        # dynamic and context paths
        self.dyn1 = nn.Conv1d(d, 512, kernel_size=1)
        self.dyn2 = nn.Conv1d(512, 1, kernel_size=1)
        self.ctx_conv = nn.Conv1d(d, d, kernel_size=3, padding=1)
        # interaction-space graph
        self.proj = nn.Conv1d(d, nodes, kernel_size=1)
        self.state = nn.Conv1d(d, states, kernel_size=1)
        self.state_c = nn.Linear(d, states)
        if context_nodes == "own-projection":
            self.proj_c = nn.Conv1d(d, nodes, kernel_size=1)
        self.gcn_m = GCN(nodes, states)
        self.gcn_c = GCN(nodes, states)
        cat_nodes, cat_states = (2 * nodes, states) if fusion == "nodes" else (nodes, 2 * states)
        self.fuse_node = nn.Conv1d(cat_nodes, nodes, kernel_size=1)
        self.fuse_state = nn.Linear(cat_states, states, bias=False)

    def streams(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (N,T,D) → feat F (N,T,D), s_int (N,T), ctx_idx (N,Nc), h_ctx (N,Nc,D), f_r (N,T,st); without CoMo
        (``como=False``) feat only, and without ICA (``ica=False``) feat is x itself."""
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"expected x of shape (N, T, {self.feature_dim}), got {tuple(x.shape)}")
        t = x.shape[1]
        feat = ica(self.ica_conv, x) if self.use_ica else x
        if not self.use_como:
            return {"feat": feat}
        # dynamic path → the N lowest predicted motion intensities, in temporal order (a hard choice)
        s_int = torch.sigmoid(_conv(self.dyn2, F.relu(_conv(self.dyn1, feat)))).squeeze(-1)
        nc = context_count(t, self.context_fraction)
        ctx_idx = s_int.detach().topk(nc, dim=1, largest=False).indices.sort(dim=1).values
        f_sel = feat.gather(1, ctx_idx.unsqueeze(-1).expand(-1, -1, feat.shape[-1]))
        h_ctx = F.relu(_conv(self.ctx_conv, f_sel))  # (N,Nc,D)
        # interaction space: one projection P into the nodes and back (bi-projection), 1/T normalised
        p = _conv(self.proj, feat)  # (N,T,n)
        v = p.transpose(1, 2) @ _conv(self.state, feat) / t  # (N,n,st)
        if self.context_nodes == "broadcast":
            v_cont = p.mean(1).unsqueeze(-1) * self.state_c(h_ctx.mean(1)).unsqueeze(1)  # Pᵀ(1_T x_cᵀ)/T = p̄ x_cᵀ
        else:
            p_c = _conv(self.proj_c, h_ctx)  # (N,Nc,n)
            v_cont = p_c.transpose(1, 2) @ self.state_c(h_ctx) / nc
        u = torch.cat([self.gcn_m(v), self.gcn_c(v_cont)], dim=1 if self.fusion == "nodes" else 2)
        r = self.fuse_state(F.relu(self.fuse_node(u)))  # (N,n,st)
        return {"feat": feat, "s_int": s_int, "ctx_idx": ctx_idx, "h_ctx": h_ctx, "f_r": p @ r}


class CoMoTrunk(CoMo):
    """CoMo as a trunk under MDVAD's heads (``model.trunk=como``): x (N,T,D) → [F ; F_R] (N,T,D+st)."""

    def __init__(self, feature_dim: int, **kwargs: Any) -> None:
        super().__init__(feature_dim, **kwargs)
        self.out_dim = self.feature_dim + (self.states if self.use_como else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.streams(x)
        return torch.cat([out["feat"], out["f_r"]], dim=-1) if self.use_como else out["feat"]


class CLAVCoMoNet(nn.Module):
    """The whole model: :class:`CoMo`, the score head (FC1-FC2-FC3), S_R's FC, and the training-only CSN, CSA
    and object classifier. ``forward`` returns every stream the losses and the scoring rule need."""

    def __init__(
        self,
        feature_dim: int,
        domains: list[str],
        *,
        hidden: int = 512,
        embed_dim: int = 128,
        dropout: float = 0.7,
        object_classes: int = 80,
        alpha: float = 0.1,
        alpha_domains: dict[str, float] | None = None,
        **como: Any,
    ) -> None:
        super().__init__()
        d = self.feature_dim = int(feature_dim)
        self._domains = [str(x) for x in domains]
        self.alpha = float(alpha)  # test fusion S + α·S_R (§3.5)
        self.alpha_domains = dict(alpha_domains or {})
        self.object_classes = int(object_classes)
        self.como = CoMo(d, **como)
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, embed_dim)
        self.fc3 = nn.Linear(embed_dim, 1)
        self.drop = nn.Dropout(dropout)
        self.csn = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.csa = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, d))
        if self.como.use_como:  # the object classifier and S_R's FC belong to the CoMo module
            self.obj_head = nn.Sequential(nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, object_classes))
            self.fc_r = nn.Linear(self.como.states, 1)
        xavier_init(self)

    # ------------------------------------------------------------------ domains (one shared head)
    @property
    def domains(self) -> list[str]:
        return list(self._domains)

    def add_domain(self, name: str, init_from: str | None = None) -> None:
        """The score head is shared by every domain: a new domain only records its name."""
        if name in self._domains:
            raise ValueError(f"domain {name!r} already known")
        self._domains.append(str(name))

    def alpha_for(self, target: str | None) -> float:
        """α of the test score for ``target``: its entry in ``alpha_domains``, else ``alpha``."""
        return float(self.alpha_domains.get(target, self.alpha)) if target is not None else self.alpha

    def get_extra_state(self) -> dict[str, Any]:
        return {"domains": self.domains}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._domains = list(state["domains"])

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, objects: bool | None = None) -> dict[str, torch.Tensor]:
        """x (N,T,D) → the :meth:`CoMo.streams` plus emb (N,T,d), s (N,T), s_r (N,T) and, when ``objects``
        (default: in training mode), s_obj (N,Nc,C); without the CoMo module (``como=False``) no s_r, s_obj."""
        out = self.como.streams(x)
        emb = self.drop(F.relu(self.fc2(self.drop(F.relu(self.fc1(out["feat"]))))))
        out["emb"] = emb
        out["s"] = torch.sigmoid(self.fc3(emb)).squeeze(-1)
        if not self.como.use_como:
            return out
        out["s_r"] = torch.sigmoid(self.fc_r(out["f_r"])).squeeze(-1)
        if objects if objects is not None else self.training:
            out["s_obj"] = torch.sigmoid(self.obj_head(out["h_ctx"]))
        return out


def _conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A Conv1d over time on (N,T,C) tensors."""
    return conv(x.transpose(1, 2)).transpose(1, 2)


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every conv and linear layer (RTFM convention)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
