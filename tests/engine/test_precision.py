"""train.precision=bf16: the shared training step and the shared scoring path really run the model's matmuls in
bfloat16 (dtype seen inside the forward), for every registered method; parameters, gradients and scores stay
float32 and finite. fp32 never autocasts."""

from __future__ import annotations

import math

import pytest
import torch

from omnivad import config
from omnivad.data.batch import Batch
from omnivad.engine import precision as prec
from omnivad.engine.harness import build_optimizer
from omnivad.engine.spec import RunSpec
from omnivad.engine.train_loop import train_step
from omnivad.methods.registry import get_method, list_methods

C, T, K = 16, 8, 2
TINY = ["mdvad.hidden=8", "bn_wvad.embed_dim=16", "bn_wvad.heads=2", "bn_wvad.dim_head=4", "bn_wvad.mlp_dim=8",
        "bn_wvad.head_ratios=[2,4]", "como.hidden=16", "como.embed_dim=8", "como.nodes=4", "como.states=8",
        "mmil.hidden=[16,8]"]
SPEC = RunSpec(name="p", corpus_uri="/nowhere", train={"A": [], "B": []}, head_domains=["A", "B"], steps=1)


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1], dtype=torch.float32)
    return Batch(torch.randn(8, K, T, C, generator=g), torch.ones(8, K, dtype=torch.bool), y,
                 torch.tensor([0, 0, 1, 1, 0, 0, 1, 1]))


def _record_dtypes(model: torch.nn.Module) -> list[torch.dtype]:
    seen: list[torch.dtype] = []

    def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            seen.append(out.dtype)

    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)):
            m.register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
@pytest.mark.parametrize("name", list_methods())
def test_precision_in_step_and_scoring(name: str, precision: str) -> None:
    torch.manual_seed(0)
    cfg = config.load(overrides=[f"model.method={name}", f"train.precision={precision}", *TINY])
    method = get_method(name)
    model = method.build(cfg, ["A", "B"], C)
    seen = _record_dtypes(model)
    assert seen == [] and any(True for _ in model.modules() if isinstance(_, (torch.nn.Linear, torch.nn.Conv1d)))
    opt = build_optimizer(model.parameters(), "adam", 1e-3)
    logs = train_step(method, model, opt, _batch(), cfg, SPEC)
    want = torch.bfloat16 if precision == "bf16" else torch.float32
    assert seen and want in seen and (precision == "bf16" or set(seen) == {torch.float32}), seen
    assert all(math.isfinite(v) for v in logs.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
    seen.clear()
    s = prec.score(method, model, torch.randn(K, T, C), "A", cfg.train.precision)
    assert s.shape == (T,) and s.dtype.name == "float64" and bool((s == s).all())
    assert want in seen


def test_unknown_precision_is_an_error() -> None:
    with pytest.raises(ValueError, match="train.precision"):
        prec.autocast("fp16")


@pytest.mark.parametrize("name", list_methods())
def test_find_unused_parameters_is_declared(name: str) -> None:
    """A method that says DDP needs no unused-parameter search leaves no trainable parameter without a gradient."""
    method = get_method(name)
    if method.find_unused_parameters:
        pytest.skip(f"{name} declares find_unused_parameters=True")
    cfg = config.load(overrides=[f"model.method={name}", *TINY])
    model = method.build(cfg, ["A", "B"], C)
    loss, _ = method.loss(model, _batch(), cfg)
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_fused_adam_only_on_gpu() -> None:
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], "adam", 1e-3)
    assert not opt.defaults.get("fused")


def test_compile_runs_a_training_step() -> None:
    """train.compile=true: the shared step through a compiled model (nn.Module.compile keeps the class)."""
    from omnivad.engine.harness import compile_model

    torch.manual_seed(0)
    cfg = config.load(overrides=["model.method=nullang-mil", "train.compile=true", *TINY])
    method = get_method("nullang-mil")
    model = method.build(cfg, ["A", "B"], C)
    ref = method.build(cfg, ["A", "B"], C)
    ref.load_state_dict(model.state_dict())
    compiled = compile_model(model, cfg.train.compile)
    assert type(compiled) is type(ref)
    before = [p.detach().clone() for p in compiled.parameters()]
    try:
        logs = train_step(method, compiled, build_optimizer(compiled.parameters(), "adam", 1e-3), _batch(), cfg, SPEC)
    except Exception as exc:  # torch.compile needs a working C++ toolchain for its CPU backend
        pytest.skip(f"torch.compile does not work here: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    assert all(math.isfinite(v) for v in logs.values())  # (dropout masks differ: inductor has its own RNG)
    assert any(not torch.equal(p, q) for p, q in zip(compiled.parameters(), before))
    ref.load_state_dict(compiled.state_dict())  # same keys: the in-place compile adds no prefix
    video = torch.randn(K, T, C)
    assert torch.allclose(method.score(compiled, video, "A"), method.score(ref, video, "A"), atol=1e-5)
