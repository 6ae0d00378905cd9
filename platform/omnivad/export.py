"""``omnivad export`` and ``omnivad convert``.

export: one self-contained module holding a model's network **and** its scoring rule for one domain (or the
method's unseen rule): ``(K, T, C) → (T,)`` float32, equal to ``method.score`` (the method's
:meth:`~omnivad.methods.base.Method.scoring_module`), as TorchScript (``torch.jit.trace``), ONNX (opset 17,
dynamic K and T) or a ``torch.export`` ExportedProgram (``.pt2``, dynamic T).

convert: a public BN-WVAD state dict (:mod:`omnivad.methods.bn_wvad.interop`) into an omnivad ``model.pt``.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from omnivad.api import LoadedModel, load_model

FORMATS = ("torchscript", "onnx", "exported-program")


def scoring_module(loaded: LoadedModel, domain: str | None) -> torch.nn.Module:
    """The method's scoring module for ``domain`` (its head when the model has one, else the unseen rule)."""
    target = domain if domain in loaded.domains else None
    return loaded.method.scoring_module(loaded.model, target).eval()


def example_input(loaded: LoadedModel, crops: int = 2, snippets: int = 8) -> torch.Tensor:
    return torch.randn(crops, snippets, int(loaded.payload["feature_dim"]), generator=torch.Generator().manual_seed(0))


def export_model(model: str, fmt: str, out: str, domain: str | None = None, snippets: int = 8) -> dict[str, Any]:
    """Write ``model``'s scoring module for ``domain`` in format ``fmt`` to ``out``, traced on a (2, ``snippets``,
    C) input; returns what was written."""
    if fmt not in FORMATS:
        raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    loaded = load_model(model)
    if domain is not None and domain not in loaded.domains:
        domain_note = f"no head for {domain!r}: the unseen-domain rule"
    else:
        domain_note = f"head {domain!r}" if domain else "the unseen-domain rule"
    module = scoring_module(loaded, domain)
    x = example_input(loaded, snippets=snippets)
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.trace(module, (x,), check_trace=False).save(out)
            return _written(model, fmt, out, domain_note, loaded)
        program = _program(module, x)
        if fmt == "exported-program":
            torch.export.save(program, out)
        else:
            onnx = torch.onnx.export(program, (x,), input_names=["features"], output_names=["scores"], dynamo=True)
            onnx.save(out)
    return _written(model, fmt, out, domain_note, loaded)


def _program(module: torch.nn.Module, x: torch.Tensor) -> Any:
    """``torch.export`` with dynamic K and T; a scoring rule whose graph depends on T (CoMo's graph layer) is
    exported for the example's length only (a UserError on the dynamic shapes)."""
    dims = {0: torch.export.Dim("crops", min=1, max=64), 1: torch.export.Dim("snippets", min=2, max=100_000)}
    try:
        return torch.export.export(module, (x,), dynamic_shapes=(dims,))
    except torch._dynamo.exc.UserError:
        return torch.export.export(module, (x,))


def _written(model: str, fmt: str, out: str, note: str, loaded: LoadedModel) -> dict[str, Any]:
    return {"model": model, "format": fmt, "out": out, "scoring": note, "method": loaded.payload["method"]}


def load_exported(path: str, fmt: str) -> Any:
    """A callable ``(K, T, C) tensor → (T,) tensor`` of an exported file (ONNX through onnxruntime)."""
    if fmt == "torchscript":
        return torch.jit.load(path)
    if fmt == "exported-program":
        return torch.export.load(path).module()
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(sess.run(["scores"], {"features": x.numpy()})[0])


def convert_bn_wvad(ckpt: str, out: str, domains: list[str] | None = None, heads: int = 4) -> str:
    """A public BN-WVAD checkpoint (plain state dict) → an omnivad ``model.pt`` (method ``bn-wvad``, config with
    the sizes read from the tensors) that ``predict``, ``evaluate`` and ``export`` load."""
    from omnivad.config import dump, load
    from omnivad.engine.checkpoint import write_model
    from omnivad.methods.bn_wvad.interop import load_public_checkpoint

    from omnivad.errors import CheckpointError

    try:
        net = load_public_checkpoint(ckpt, domains, heads)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt}: not a public BN-WVAD checkpoint ({exc})") from exc
    hp = dict(net.hparams)
    overrides = ["model.method=bn-wvad", *[f"bn_wvad.{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}"
                                           for k, v in _config_sizes(hp).items()]]
    cfg = load(overrides=overrides)
    write_model(out, {"model": net.state_dict(), "method": "bn-wvad", "domains": list(net.domains),
                      "feature_dim": int(hp["feature_dim"]), "selected": f"converted:{ckpt}", "config": dump(cfg)})
    return out


def _config_sizes(hp: dict[str, Any]) -> dict[str, Any]:
    """The ``bn_wvad.*`` config fields of the model's sizes (those the section has)."""
    from omnivad.methods.bn_wvad.config import BNWVADConfig

    fields = BNWVADConfig.model_fields
    return {k: v for k, v in hp.items() if k in fields}
