"""Mixed precision for every method: ``train.precision`` (``fp32`` or ``bf16``) as one autocast context, used
by the shared training step (``engine/train_loop.py``) and the shared scoring path (validation and test scoring).

bf16 runs the matmuls and convolutions in bfloat16 (``torch.autocast`` on CPU and CUDA); parameters, optimizer
state and gradients stay float32, and the losses cast what their numerics need back to float32 (BCE/focal, cosines
and margins: ``methods/*/loss.py``). Scores always come back as float32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str = "cpu") -> AbstractContextManager[Any]:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return nullcontext()
    kind = torch.device(device).type
    return torch.autocast(device_type=kind if kind in ("cpu", "cuda") else "cpu", dtype=torch.bfloat16)


def model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def score(method: Any, model: torch.nn.Module, x: torch.Tensor, target: str | None, precision: str = "fp32") -> np.ndarray:
    """``method.score`` of one video ``x`` (K, T, C) under ``precision``, as float64 numpy (T,)."""
    with autocast(precision, model_device(model)):
        s = method.score(model, x, target)
    return s.detach().float().cpu().numpy().astype(np.float64)
