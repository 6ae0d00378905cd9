"""The contract every registered method keeps (``methods/README.md``): build → loss → backward → score (T,) →
state-dict round trip → its config section round trip, and every hook of :class:`omnivad.methods.base.Method`
answering with the declared type. Plus the layering rules: no import cycle inside omnivad, the registries import
no method, the data pipeline imports nothing from ``methods/``."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from omnivad import config
from omnivad.config import Config
from omnivad.data.batch import Batch
from omnivad.methods.base import MethodBase
from omnivad.methods.registry import entry_overrides, get_method, list_methods
from omnivad.protocols.runner import config_hash
from omnivad.sections import registered_sections
from omnivad.tune.config import SearchParam
from omnivad.tune.space import resolve_space

C, T, K = 16, 8, 2
DOMAINS = ["A", "B"]
TINY = ["mdvad.hidden=8", "bn_wvad.embed_dim=16", "bn_wvad.heads=2", "bn_wvad.dim_head=4", "bn_wvad.mlp_dim=8",
        "bn_wvad.head_ratios=[2,4]", "como.hidden=16", "como.embed_dim=8", "como.nodes=4", "como.states=8",
        "mmil.hidden=[16,8]"]
PACKAGE = Path(__file__).resolve().parents[2] / "platform" / "omnivad"


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, K, T, C, generator=g)
    mask = torch.ones(8, K, dtype=torch.bool)
    mask[1, 1] = False  # one padded crop
    y = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1], dtype=torch.float32)
    dom = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    return Batch(x, mask, y, dom)


@pytest.mark.parametrize("name", list_methods())
def test_method_contract(name: str) -> None:
    torch.manual_seed(0)
    cfg = config.load(overrides=[f"model.method={name}", *TINY])
    method = get_method(name)
    assert isinstance(method, MethodBase) and method.name == name
    model = method.build(cfg, DOMAINS, C)
    assert isinstance(model, torch.nn.Module)

    loss, logs = method.loss(model, _batch(), cfg)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach())) and all(isinstance(v, float) for v in logs.values())
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    video = torch.randn(K, T, C)
    for target in ("A", None):
        s = method.score(model, video, target)
        assert s.shape == (T,) and s.dtype == torch.float32 and bool(torch.isfinite(s).all())

    again = method.build(cfg, DOMAINS, C)
    again.load_state_dict(model.state_dict())
    assert torch.allclose(method.score(again, video, "A"), method.score(model, video, "A"))

    section = getattr(cfg, method.section)
    assert type(section).model_validate(section.model_dump(mode="json")) == section
    assert config.load(None, [], base=config.dump(cfg)) == cfg


@pytest.mark.parametrize("name", list_methods())
def test_method_hooks(name: str) -> None:
    cfg = config.load(overrides=[f"model.method={name}", *TINY])
    method = get_method(name)
    model = method.build(cfg, DOMAINS, C)
    assert isinstance(method.tag(cfg), str) and method.tag(cfg).startswith(name)
    assert isinstance(method.has_ac(cfg), bool)
    fields = method.run_fields(cfg)
    assert fields["method"] == name and ("ac" in fields) == method.has_ac(cfg)
    over = entry_overrides(name)
    assert over["model.method"] == name
    assert config.load(None, [f"{k}={v}" for k, v in over.items()]).model.method == name
    space = method.default_search_space()
    assert space and all(isinstance(p, SearchParam) for p in space)
    assert resolve_space(cfg) == space
    heads = method.head_domains(model)
    assert heads is None or heads == DOMAINS
    x = torch.randn(2, K, T, C)
    assert method.prepare_target(model, "A", cfg, x) is False  # a target the model has a head for: nothing to do
    similar = method.most_similar_head(model, x)
    assert similar is None or similar in DOMAINS
    step = method.training_step(model, _batch(), None, cfg)
    assert step is None or isinstance(step, dict)


def test_old_hooks_answer_as_the_runner_did() -> None:
    cfg = config.load()
    assert get_method("nullang-mil").tag(cfg) == "nullang-mil+ac"
    assert get_method("nullang-mil").tag(config.load(overrides=["mdvad.trunk=bn-wvad"])) == "nullang-mil@bn-wvad+ac"
    assert get_method("bn-wvad").tag(cfg) == "bn-wvad" and not get_method("bn-wvad").has_ac(cfg)
    assert entry_overrides("nullang-mil@bn-wvad+noac") == {"model.method": "nullang-mil", "mdvad.trunk": "bn-wvad", "mdvad.ac": False}
    assert entry_overrides("mmil") == {"model.method": "mmil", "mdvad.ac": False}
    for bad, msg in (("bn-wvad@mdvad", "no trunk"), ("nullang-mil@resnet", "unknown trunk"),
                     ("mmil+ac", "no Abnormal-Conflict"), ("bogus", "unknown method")):
        with pytest.raises(Exception, match=msg):
            entry_overrides(bad)


@pytest.mark.parametrize("section", sorted(set(registered_sections()) - set(config.IDENTITY_EXCLUDED)))
def test_a_registered_section_s_fields_are_in_the_run_identity(section: str) -> None:
    """Every field of every registered section is in the run identity unless IDENTITY_EXCLUDED names it, and
    changing one (the first numeric or boolean field, where the section has one) changes the config hash."""
    base = Config()
    cls = registered_sections()[section]
    kept = {f for f in cls.model_fields if f"{section}.{f}" not in config.IDENTITY_EXCLUDED}
    assert set(config.identity_fields(base)[section]) == kept
    for fname in sorted(kept):
        value = getattr(getattr(base, section), fname)
        if isinstance(value, bool):
            new = not value
        elif isinstance(value, int):
            new = value + 1
        elif isinstance(value, float):
            new = value / 2 if value else 0.5
        else:
            continue
        try:
            changed = config.load(None, [f"{section}.{fname}={new}"])
        except Exception:
            continue
        assert config_hash(changed, "fp") != config_hash(base, "fp"), f"{section}.{fname}"


# ---------------------------------------------------------------------------------------------- layering
def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, function-level imports included, ``if TYPE_CHECKING:`` blocks excluded."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in node.body for n in ast.walk(sub)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = module.split(".")
            base = parts[: len(parts) - node.level + (path.name == "__init__.py")] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    mods: dict[str, Path] = {}
    for p in PACKAGE.rglob("*.py"):
        rel = p.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        mods[name] = p
    return {m: {i for i in _imports(p, m) if i in mods and i != m} for m, p in mods.items()}


def test_no_import_cycle_inside_omnivad() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(v: str, stack: list[str]) -> None:
        state[v] = 1
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(w):], w]))
            if w not in state:
                visit(w, [*stack, w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])


def test_registries_and_data_import_no_method() -> None:
    graph = _graph()
    methods = {m for m in graph if m.startswith("omnivad.methods.") and m.count(".") >= 2
               and m.split(".")[2] in {"mdvad", "bn_wvad", "como", "mmil"}}
    for reg in ("omnivad.methods.registry", "omnivad.methods.trunks", "omnivad.methods.base", "omnivad.sections"):
        assert not graph[reg] & methods, reg
    for m in graph:
        if m.startswith("omnivad.data"):
            assert not any(i.startswith("omnivad.methods") for i in graph[m]), m
