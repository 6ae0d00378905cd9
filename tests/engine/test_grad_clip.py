"""``train.grad_clip`` in the shared training step (engine/train_loop.py): clip_grad_norm_ of each optimizer's own
parameters before its step, for the shared loss → backward → step and for a method's own ``training_step``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from omnivad import config
from omnivad.engine.train_loop import ClippedOptimizer, clipped, train_step
from omnivad.methods.base import Batch, MethodBase

SPEC = SimpleNamespace(adapting=False)


class _Scaled(MethodBase):
    """loss = scale · Σ w·x: gradient ``scale · x`` on w, whatever w is."""

    name = "scaled"

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def loss(self, model: torch.nn.Module, batch: Batch, cfg: Any, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        return self.scale * (model.weight * batch.x.reshape(-1, 4)).sum(), {}


class _OwnStep(_Scaled):
    def training_step(self, model: torch.nn.Module, batch: Batch, optimizers: Any, cfg: Any,
                      adapting: bool = False) -> dict[str, float]:
        loss, logs = self.loss(model, batch, cfg)
        optimizers.zero_grad()
        loss.backward()
        optimizers.step()
        return {"own": 1.0}


def _batch() -> Batch:
    x = torch.ones(1, 1, 1, 4)
    return Batch(x, torch.ones(1, 1, dtype=torch.bool), torch.ones(1), torch.zeros(1, dtype=torch.int64))


def _update(method: MethodBase, clip: float | None) -> torch.Tensor:
    """The SGD (lr 1) step the shared loop makes for ``method`` under train.grad_clip=``clip``."""
    model = torch.nn.Linear(4, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    cfg = config.load(overrides=[f"train.grad_clip={'null' if clip is None else clip}"])
    train_step(method, model, opt, _batch(), cfg, SPEC)
    return -model.weight.detach().reshape(-1)


@pytest.mark.parametrize("method_cls", [_Scaled, _OwnStep])
def test_clip_shrinks_an_update_whose_gradient_norm_exceeds_it(method_cls: type[_Scaled]) -> None:
    method = method_cls(scale=3.0)  # gradient 3·(1,1,1,1): norm 6
    unclipped = _update(method, None)
    assert torch.allclose(unclipped, torch.full((4,), 3.0))
    clipped_update = _update(method, 1.5)
    assert clipped_update.norm().item() == pytest.approx(1.5, rel=1e-5)  # same direction, norm 1.5
    assert torch.allclose(clipped_update / clipped_update.norm(), unclipped / unclipped.norm())


def test_clip_above_the_gradient_norm_changes_nothing() -> None:
    method = _Scaled(scale=0.1)  # norm 0.2
    assert torch.equal(_update(method, 1.0), _update(method, None))


def test_default_is_no_clipping_and_the_field_is_validated() -> None:
    assert config.load().train.grad_clip is None
    with pytest.raises(Exception, match="train.grad_clip"):
        config.load(overrides=["train.grad_clip=0"])


def test_several_optimizers_each_clip_their_own_parameters() -> None:
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
    opts = clipped([torch.optim.SGD([a], lr=1.0), torch.optim.SGD([b], lr=1.0)], 1.0)
    assert isinstance(opts, list) and all(isinstance(o, ClippedOptimizer) for o in opts)
    a.grad, b.grad = torch.full((3,), 10.0), torch.full((3,), 0.1)
    for o in opts:
        o.step()
    assert a.detach().norm().item() == pytest.approx(1.0, rel=1e-5)  # a's own norm clipped to 1
    assert torch.allclose(b.detach(), torch.full((3,), -0.1))  # b's small gradient untouched (not scaled by a's)
    assert clipped({"g": opts[0].optimizer}, None)["g"] is opts[0].optimizer
