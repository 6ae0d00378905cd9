"""The one Ray Train harness (``engine/harness.py``): a single launch site, DDP only through
``prepare_model``, and no crash switch in product code (faults are injected by tests' step hooks).

That a hook-killed run resumes to the same result is asserted end to end by
``tests/engine/test_ray_protocols.py::test_killed_run_resumes_to_the_same_result`` (and the zxVAD and S3
twins); here: the static properties, and that the hook really kills a process the way SIGKILL would.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import torch

from omnivad.engine import harness

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "platform"


def _sources() -> dict[pathlib.Path, str]:
    return {p: p.read_text() for p in PLATFORM.rglob("*.py")}


def test_one_torch_trainer_launch_site():
    counts = {p: t.count("TorchTrainer(") for p, t in _sources().items() if "TorchTrainer(" in t}
    assert sum(counts.values()) == 1, counts
    assert list(counts) == [PLATFORM / "omnivad" / "engine" / "harness.py"]


def test_no_ad_hoc_ddp_and_no_crash_switch():
    for path, text in _sources().items():
        assert "_AttrDDP" not in text, path
        assert "os._exit(137)" not in text, path
        assert "CRASH_AT_STEP" not in text, path
        assert "DistributedDataParallel(" not in text, path


def test_step_hooks_are_called_in_order_with_the_step():
    seen: list[tuple[str, int]] = []
    hooks = [lambda s: seen.append(("a", s)), lambda s: seen.append(("b", s))]
    assert harness.step_hooks({harness.HOOKS_KEY: hooks}) == hooks and harness.step_hooks({}) == []
    for step in (1, 2):
        harness.run_hooks(hooks, step)
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_the_kill_hook_ends_the_process_like_sigkill_at_its_step():
    code = ("from tests.faults import KillAt\nhook = KillAt(3)\n"
            "for step in range(1, 6):\n    hook(step)\n    print(step, flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137
    assert proc.stdout.split() == ["1", "2"]  # no cleanup after step 3, nothing after it


def test_build_optimizer():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = harness.build_optimizer(params, "adam", 0.01, 1e-4, betas=(0.5, 0.999))
    assert isinstance(adam, torch.optim.Adam)
    assert adam.defaults["lr"] == 0.01 and adam.defaults["weight_decay"] == 1e-4 and adam.defaults["betas"] == (0.5, 0.999)
    assert isinstance(harness.build_optimizer(params, "adamax", 0.1), torch.optim.Adamax)


def test_a_method_s_own_training_step_replaces_the_shared_one(monkeypatch):
    """``Method.training_step`` (several optimisers, manual optimisation): when it returns logs the shared loop
    does no backward or step of its own; when it returns None (the default) the shared loss/backward/step runs."""
    import torch

    from omnivad import config
    from omnivad.data.batch import Batch
    from omnivad.engine.spec import RunSpec
    from omnivad.engine.train_loop import train_step
    from omnivad.methods.registry import get_method

    cfg = config.load(overrides=["model.method=mil"])
    method = get_method("mil")
    torch.manual_seed(0)
    model = method.build(cfg, ["a"], 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = Batch(x=torch.randn(4, 1, 6, 8), mask=torch.ones(4, 1, dtype=torch.bool),
                  y=torch.tensor([0.0, 1.0, 0.0, 1.0]), dom=torch.zeros(4, dtype=torch.long))
    spec = RunSpec(name="x", corpus_uri="unused", train={}, head_domains=["a"], steps=1, adapting=True)
    before = [p.detach().clone() for p in model.parameters()]
    calls: list[bool] = []
    monkeypatch.setattr(method, "training_step",
                        lambda m, b, o, c, adapting=False: calls.append(adapting) or {"own": 1.0}, raising=False)
    assert train_step(method, model, opt, batch, cfg, spec) == {"own": 1.0}
    assert calls == [True]
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    monkeypatch.undo()
    logs = train_step(method, model, opt, batch, cfg, spec)
    assert isinstance(logs, dict) and logs != {"own": 1.0}  # the method's own loss terms
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
