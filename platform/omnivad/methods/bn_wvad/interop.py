"""Load a checkpoint of the public BN-WVAD implementation (github.com/cool-xuan/BN-WVAD, ``models/model.py``:
``WSAD`` = ``embedding`` (UR-DMU ``Temporal``) + ``selfatt`` (UR-DMU ``translayer.Transformer``) + ``normal_head``)
into :class:`~omnivad.methods.bn_wvad.model.BNWVADNet`. Same weights, same scores (``model.eval()``).

Key mapping (public → omnivad; ``i`` = Transformer block)::

    embedding.conv_1.0.{weight,bias}                 → encoder.embed.{weight,bias}
    selfatt.layers.i.0.norm.{weight,bias}            → encoder.blocks.i.norm1.{weight,bias}
    selfatt.layers.i.0.fn.to_qkv.weight              → encoder.blocks.i.attn.to_qkv.weight
    selfatt.layers.i.0.fn.to_out.0.{weight,bias}     → encoder.blocks.i.attn.to_out.{weight,bias}
    selfatt.layers.i.1.norm.{weight,bias}            → encoder.blocks.i.norm2.{weight,bias}
    selfatt.layers.i.1.fn.net.0.{weight,bias}        → encoder.blocks.i.ff.fc1.{weight,bias}
    selfatt.layers.i.1.fn.net.3.{weight,bias}        → encoder.blocks.i.ff.fc2.{weight,bias}
    normal_head.{conv1,bn1,conv2,bn2,conv3}.*        → head.{conv1,bn1,conv2,bn2,conv3}.*   (BN buffers included)

The public checkpoint is a plain state dict (``torch.save(net.state_dict())``, ``ckpts/xd_best.pkl``), read here with
``weights_only=True``. Its sizes come from the tensor shapes; the head count is not recoverable from them (q,k,v,t
are one Linear) and is the public code's fixed 4 unless given.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import torch

from omnivad.methods.bn_wvad.model import BNWVADNet

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^embedding\.conv_1\.0\.(weight|bias)$"), r"encoder.embed.\1"),
    (re.compile(r"^selfatt\.layers\.(\d+)\.0\.norm\.(weight|bias)$"), r"encoder.blocks.\1.norm1.\2"),
    (re.compile(r"^selfatt\.layers\.(\d+)\.0\.fn\.to_qkv\.weight$"), r"encoder.blocks.\1.attn.to_qkv.weight"),
    (re.compile(r"^selfatt\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)$"), r"encoder.blocks.\1.attn.to_out.\2"),
    (re.compile(r"^selfatt\.layers\.(\d+)\.1\.norm\.(weight|bias)$"), r"encoder.blocks.\1.norm2.\2"),
    (re.compile(r"^selfatt\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)$"), r"encoder.blocks.\1.ff.fc1.\2"),
    (re.compile(r"^selfatt\.layers\.(\d+)\.1\.fn\.net\.3\.(weight|bias)$"), r"encoder.blocks.\1.ff.fc2.\2"),
    (re.compile(r"^normal_head\.((?:conv[123]|bn[12])\..+)$"), r"head.\1"),
]


def public_to_omnivad_key(key: str) -> str:
    """The omnivad name of one public state-dict key (an optional DataParallel ``module.`` prefix is dropped)."""
    k = key[len("module."):] if key.startswith("module.") else key
    for pattern, repl in _RULES:
        if pattern.match(k):
            return pattern.sub(repl, k)
    raise KeyError(f"BN-WVAD public checkpoint: unexpected key {key!r}")


def convert_public_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The public state dict renamed to omnivad's keys (tensors shared, not copied)."""
    return {public_to_omnivad_key(k): v for k, v in sd.items()}


def public_hparams(sd: Mapping[str, torch.Tensor], heads: int = 4) -> dict[str, Any]:
    """BNWVADNet constructor sizes read from the public tensors' shapes."""
    own = convert_public_state_dict(sd)
    embed = own["encoder.embed.weight"]  # (D, C, 3)
    depth = 1 + max(int(k.split(".")[2]) for k in own if k.startswith("encoder.blocks."))
    inner = own["encoder.blocks.0.attn.to_qkv.weight"].shape[0] // 4
    if inner % heads:
        raise ValueError(f"BN-WVAD public checkpoint: inner width {inner} is not divisible by heads={heads}")
    d, c1, c2 = embed.shape[0], own["head.conv1.weight"].shape[0], own["head.conv2.weight"].shape[0]
    return {
        "feature_dim": int(embed.shape[1]), "embed_dim": int(d), "depth": depth, "heads": heads,
        "dim_head": inner // heads, "mlp_dim": int(own["encoder.blocks.0.ff.fc1.weight"].shape[0]),
        "head_ratios": (d // c1, d // c2),
    }


def load_public_state_dict(sd: Mapping[str, torch.Tensor], domains: list[str] | None = None, heads: int = 4,
                           model: BNWVADNet | None = None) -> BNWVADNet:
    """A BNWVADNet (eval mode) holding the public state dict ``sd``: built from its shapes, or ``model`` (strict)."""
    if model is None:
        model = BNWVADNet(domains=list(domains or ["default"]), **public_hparams(sd, heads))
    own = convert_public_state_dict(sd)
    own["_extra_state"] = model.get_extra_state()
    model.load_state_dict(own, strict=True)
    return model.eval()


def load_public_checkpoint(path: str, domains: list[str] | None = None, heads: int = 4) -> BNWVADNet:
    """Read a public ``.pkl``/``.pth`` state dict (local path or URI; weights only) into a BNWVADNet."""
    from omnivad import storage

    fs, p = storage.filesystem(path)
    sd = torch.load(io.BytesIO(storage.read_bytes(fs, p)), map_location="cpu", weights_only=True)
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    return load_public_state_dict(sd, domains, heads)
