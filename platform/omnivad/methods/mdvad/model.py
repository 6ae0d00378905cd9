"""MDVAD network (Cho et al., NeurIPS 2024; spec ``mdvad.md`` §4, Table A4). Pure torch.

Shared ("domain-agnostic") layers (the default ``mdvad`` trunk; ``trunk`` picks any registered trunk,
see :mod:`omnivad.methods.trunks` and :mod:`omnivad.methods.mdvad.trunk`, and D = its ``out_dim``, C/2 for the default)::

    x (N,T,C) → Conv1d(C→2C,k3,p1) → split-max → ReLU → BN(C)          F_agg
              → Conv1d(C→C/2,k3,p1) → ReLU → BN(C/2)                   F_DA
    F_DA → fc512-ReLU-Dropout-fc128-ReLU-Dropout-fc1-sigmoid            s^AC   (A2: Table A4 widths)
    F_DA → fc(D→hidden) → ReLU                                          F
    F    → heads                                                         s^a (and s^n)

Heads (``head``):

- ``single``: one Linear(hidden,1)+sigmoid shared by every domain (MIL baseline); ``abn`` is (N,T,1).
- ``null``:   one Linear(hidden,1)+sigmoid per domain (Null-MIL); ``abn`` is (N,T,M).
- ``nullang``: per domain a bias-free abnormal and normal weight vector (A4); ``abn``/``nrm`` are the cosines
  between the L2-normalised F and the normalised vectors, (N,T,M) each.

The default trunk's layers are MDVADNet's own attributes (``conv_agg, bn_agg, conv_da, bn_da``: unchanged
state-dict keys); any other trunk is the submodule ``trunk``. The domain list, head type, trunk name (and the config
sections the trunk reads) and sizes travel in the state dict as ``_extra_state`` so a checkpoint can be rebuilt
with :meth:`MDVADNet.from_state_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnivad.methods.mdvad.trunk import mdvad_trunk_forward
from omnivad.methods.trunks import build_trunk, trunk_entry
from omnivad.sections import sections_view

HEADS = ("single", "null", "nullang")
#: mdvad.crop_average: average the head outputs over the crops (A12, RTFM) or the input features (one pass per video)
CROP_AVERAGE = ("outputs", "inputs")


def head_key(domain: str) -> str:
    """ModuleDict/ParameterDict key of a domain: prefixed (no clash with attributes), '.'/'%' percent-encoded."""
    return "h_" + domain.replace("%", "%25").replace(".", "%2E")


def _checked(head: str, domains: list[str], crop_average: str) -> list[str]:
    """MDVADNet's constructor checks; returns the domain names as strings."""
    if head not in HEADS:
        raise ValueError(f"head: expected one of {HEADS}, got {head!r}")
    if crop_average not in CROP_AVERAGE:
        raise ValueError(f"crop_average: expected one of {CROP_AVERAGE}, got {crop_average!r}")
    domains = [str(d) for d in domains]
    if not domains:
        raise ValueError("domains: expected at least one domain")
    if len(set(domains)) != len(domains):
        raise ValueError(f"domains: duplicates in {domains}")
    return domains


class MDVADNet(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        domains: list[str],
        head: str = "nullang",
        hidden: int = 128,
        dropout: float = 0.7,
        ang_scale: float = 1.0,
        trunk: str = "mdvad",
        trunk_config: Mapping[str, Mapping[str, Any]] | None = None,
        head_dropout: float = 0.0,
        crop_average: str = "outputs",
    ) -> None:
        """``trunk``: a registered trunk name; ``trunk_config``: the field values of the config sections it reads
        ({section: {field: value}}; missing fields take their defaults)."""
        super().__init__()
        domains = _checked(head, domains, crop_average)
        self.feature_dim = int(feature_dim)
        self.head = head
        self.hidden = int(hidden)
        self.dropout = float(dropout)
        self.ang_scale = float(ang_scale)
        self.head_dropout = float(head_dropout)
        self.crop_average = str(crop_average)
        self._domains: list[str] = []

        self.trunk_name = str(trunk)
        sections = trunk_entry(self.trunk_name).sections
        given = {s: dict(trunk_config[s]) for s in sections if trunk_config and trunk_config.get(s) is not None}
        self.trunk_config = {s: getattr(v, s).model_dump(mode="json") for s in sections
                             for v in [sections_view(sections, given)]} if given else {}
        body = build_trunk(self.trunk_name, given, self.feature_dim)
        if self.trunk_name == "mdvad":
            for name, layer in body.named_children():  # legacy layout: conv_agg, bn_agg, ... at the top level
                self.add_module(name, layer)
        else:
            self.trunk = body
        d = self.trunk_dim = int(body.out_dim)
        self.ac_head = nn.Sequential(
            nn.Linear(d, 512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 1),
        )
        self.fc = nn.Linear(d, self.hidden)
        self.head_drop = nn.Dropout(self.head_dropout)  # on F before the heads (mdvad.head_dropout; spec: none)
        if head == "single":
            self.single_head = nn.Linear(self.hidden, 1)
        elif head == "null":
            self.heads = nn.ModuleDict()
        else:
            self.ang_heads = nn.ParameterDict()
        for d in domains:
            self.add_domain(d)

    # ------------------------------------------------------------------ domains
    @property
    def domains(self) -> list[str]:
        return list(self._domains)

    @property
    def num_heads(self) -> int:
        """Width M of ``abn``: 1 for the single head, else the number of domains."""
        return 1 if self.head == "single" else len(self._domains)

    def domain_index(self, name: str | None) -> int:
        """Index of ``name`` in :attr:`domains`, or -1 when the model has no head for it (unseen)."""
        if name is None or name not in self._domains:
            return -1
        return self._domains.index(name)

    def add_domain(self, name: str, init_from: str | None = None) -> None:
        """Append a domain (and its head). ``init_from`` copies an existing domain's head weights.

        The single head is shared by all domains, so there it only records the name. Rebuild the optimiser
        afterwards: new parameters are not in it.
        """
        name = str(name)
        if name in self._domains:
            raise ValueError(f"domain {name!r} already has a head")
        if init_from is not None and init_from not in self._domains:
            raise ValueError(f"init_from: unknown domain {init_from!r} (known: {self._domains})")
        ref = self.fc.weight
        if self.head == "null":
            lin = nn.Linear(self.hidden, 1).to(device=ref.device, dtype=ref.dtype)
            if init_from is not None:
                lin.load_state_dict(self.heads[head_key(init_from)].state_dict())
            self.heads[head_key(name)] = lin
        elif self.head == "nullang":
            if init_from is not None:
                w = self.ang_heads[head_key(init_from)].detach().clone()
            else:
                # Same init as a bias-free nn.Linear(hidden, 2): U(-1/sqrt(hidden), 1/sqrt(hidden)).
                w = torch.empty(2, self.hidden, device=ref.device, dtype=ref.dtype)
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            self.ang_heads[head_key(name)] = nn.Parameter(w)  # row 0 abnormal, row 1 normal
        self._domains.append(name)

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        """The parameters specific to one domain's head (empty for the shared single head)."""
        if name not in self._domains:
            raise ValueError(f"unknown domain {name!r}")
        if self.head == "null":
            return list(self.heads[head_key(name)].parameters())
        if self.head == "nullang":
            return [self.ang_heads[head_key(name)]]
        return []

    def all_head_parameters(self) -> list[nn.Parameter]:
        """The parameters of the anomaly head(s): the single head, or every domain's null/nullang head (not the
        trunk, the FC layer or the AC classifier)."""
        if self.head == "single":
            return list(self.single_head.parameters())
        return list((self.heads if self.head == "null" else self.ang_heads).parameters())

    # ------------------------------------------------------------------ forward
    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F_DA (N,T,D), F (N,T,hidden)) of x (N,T,C); D is the trunk's out_dim."""
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"expected x of shape (N, T, {self.feature_dim}), got {tuple(x.shape)}")
        f_da = mdvad_trunk_forward(self, x) if self.trunk_name == "mdvad" else self.trunk(x)
        return f_da, self.head_drop(F.relu(self.fc(f_da)))

    def forward(self, x: torch.Tensor, with_ac: bool = True) -> dict[str, torch.Tensor]:
        """``abn`` (and ``nrm`` for NullAng) and, with ``with_ac``, the AC probability ``ac`` (N,T). Training without
        the AC loss passes ``with_ac=False``: the AC MLP (fc512-fc128, most of the network's FLOPs at C=64) is
        then not run."""
        f_da, f = self.features(x)
        out: dict[str, torch.Tensor] = {}
        if with_ac:
            out["ac"] = torch.sigmoid(self.ac_head(f_da)).squeeze(-1)
        if self.head == "single":
            out["abn"] = torch.sigmoid(self.single_head(f))
        elif self.head == "null":
            keys = [head_key(d) for d in self._domains]
            w = torch.cat([self.heads[k].weight for k in keys], 0)  # (M, hidden)
            b = torch.cat([self.heads[k].bias for k in keys], 0)
            out["abn"] = torch.sigmoid(F.linear(f, w, b))
        else:
            w = torch.stack([self.ang_heads[head_key(d)] for d in self._domains], 0)  # (M, 2, hidden)
            cos = torch.einsum("nth,mkh->ntmk", F.normalize(f, dim=-1), F.normalize(w, dim=-1))
            out["abn"] = cos[..., 0]
            out["nrm"] = cos[..., 1]
        return out

    # ------------------------------------------------------------------ checkpoints
    def config_dict(self) -> dict[str, Any]:
        return {
            "feature_dim": self.feature_dim,
            "domains": list(self._domains),
            "head": self.head,
            "hidden": self.hidden,
            "dropout": self.dropout,
            "ang_scale": self.ang_scale,
            "trunk": self.trunk_name,
            "trunk_config": self.trunk_config,
            "head_dropout": self.head_dropout,
            "crop_average": self.crop_average,
        }

    def get_extra_state(self) -> dict[str, Any]:
        return self.config_dict()

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise ValueError(f"MDVADNet extra state: expected a mapping, got {type(state).__name__}")
        mine = self.config_dict()
        if state.get("trunk", "mdvad") != self.trunk_name:  # checkpoints from before trunks are "mdvad"
            raise ValueError(
                f"MDVADNet checkpoint mismatch on trunk: checkpoint {state.get('trunk', 'mdvad')!r}, model "
                f"{self.trunk_name!r} (use MDVADNet.from_state_dict to rebuild the checkpoint's model)"
            )
        for key in ("head", "feature_dim", "hidden", "domains"):
            if key in state and state[key] != mine[key]:
                raise ValueError(
                    f"MDVADNet checkpoint mismatch on {key}: checkpoint {state[key]!r}, model {mine[key]!r} "
                    "(use MDVADNet.from_state_dict to rebuild the checkpoint's model)"
                )
        # dropout, head_dropout, ang_scale and crop_average are hyper-parameters of whoever built this model: loading weights keeps them.

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, Any], strict: bool = True) -> MDVADNet:
        """Rebuild a model from a state dict saved by :meth:`state_dict` (an optional ``module.``-style prefix is
        stripped)."""
        keys = [k for k in sd if k == "_extra_state" or k.endswith("._extra_state")]
        if not keys:
            raise ValueError("state dict has no MDVADNet _extra_state (not saved from an MDVADNet?)")
        key = min(keys, key=len)
        prefix = key[: -len("_extra_state")]
        state = dict(sd[key])
        model = cls(
            feature_dim=int(state["feature_dim"]),
            domains=list(state["domains"]),
            head=str(state["head"]),
            hidden=int(state.get("hidden", 128)),
            dropout=float(state.get("dropout", 0.7)),
            ang_scale=float(state.get("ang_scale", 1.0)),
            trunk=str(state.get("trunk", "mdvad")),
            trunk_config=state.get("trunk_config") or {},
            head_dropout=float(state.get("head_dropout", 0.0)),
            crop_average=str(state.get("crop_average", "outputs")),
        )
        own = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        model.load_state_dict(own, strict=strict)
        return model

    def extra_repr(self) -> str:
        return f"head={self.head}, trunk={self.trunk_name}, domains={self._domains}"
