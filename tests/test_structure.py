"""Structure checks of platform/: what the redesign's "done when" asks of the code's shape.

``pytest tests/test_structure.py`` is the check (no other script). Each failure message lists every
offender (file, line, what is wrong) so it can be acted on directly:

1. no function or method (nested ones included) longer than 60 lines, def line to last line;
2. ``omnivad/config.py`` has at most 250 lines;
3. no import cycle among the modules of ``omnivad`` (every import statement counts, wherever it is,
   except those under ``if TYPE_CHECKING:``);
4. ``omnivad/data/`` imports nothing from ``omnivad.methods``;
5. the method-agnostic packages name no method (the method-name pattern below finds nothing);
6. ``TorchTrainer(`` occurs exactly once in platform/, ``os._exit`` and ``_AttrDDP`` nowhere.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLATFORM = REPO / "platform"
PACKAGE = PLATFORM / "omnivad"

MAX_FUNCTION_LINES = 60
MAX_CONFIG_LINES = 250
#: Packages that must not know any method by name.
METHOD_AGNOSTIC = ("engine", "protocols", "tune", "registry", "data", "uvad", "corpus")
METHOD_NAMES = re.compile(r"(?<!jobs/)mdvad(?!\.(md|py))|bn.wvad|bn_wvad|nullang|como|mmil|forward_crops|loss\.ac")


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _py_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _text_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` except Python's byte-code caches and the install's ``*.egg-info`` metadata (a copy
    of the README, not source)."""
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo") \
                and not any(part.endswith(".egg-info") for part in p.parts):
            yield p


def _grep(root: Path, pattern: re.Pattern[str]) -> list[str]:
    """``path:line: text`` of every line under ``root`` that ``pattern`` matches."""
    hits = []
    for p in _text_files(root):
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{_rel(p)}:{n}: {line.strip()}")
    return hits


# -------------------------------------------------------------------------------------------- the import graph
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PLATFORM).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST, skip_type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` (in functions too); not the bodies of ``if TYPE_CHECKING:``
    when ``skip_type_checking``."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if skip_type_checking and isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = list(node.orelse)
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _import_nodes(child, skip_type_checking)


def _imported(path: Path, modules: set[str], skip_type_checking: bool = True) -> set[str]:
    """The modules of ``modules`` that the file at ``path`` imports.

    ``import a.b`` is an edge to ``a.b``; ``from a import n`` an edge to ``a.n`` when that is a module,
    else to ``a`` (relative imports resolved against the file's package)."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path)), skip_type_checking):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for a in node.names:
            sub = f"{source}.{a.name}"
            if sub in modules:
                out.add(sub)
            elif source in modules:
                out.add(source)
    out.discard(me)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in _py_files(PACKAGE)}
    modules = set(files)
    return {m: _imported(p, modules) for m, p in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through the first member of ``component`` (breadth-first, inside it)."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return component


# -------------------------------------------------------------------------------------------------- the checks
def test_no_function_longer_than_60_lines() -> None:
    long = []
    for p in _py_files(PACKAGE):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"), str(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # the def line to the last line, decorators excluded
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{_rel(p)}:{node.lineno} {node.name} {n}")
    if long:
        pytest.fail(f"{len(long)} function(s) longer than {MAX_FUNCTION_LINES} lines (path:line name length):\n"
                    + "\n".join(long), pytrace=False)


def test_config_module_is_small() -> None:
    path = PACKAGE / "config.py"
    n = len(path.read_text(encoding="utf-8").splitlines())
    if n > MAX_CONFIG_LINES:
        pytest.fail(f"{_rel(path)} has {n} lines, at most {MAX_CONFIG_LINES} allowed", pytrace=False)


def test_no_import_cycle() -> None:
    graph = import_graph()
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    lines = [f"{len(c)} modules: {', '.join(c)}\n  e.g. {' -> '.join(_cycle_in(c, graph))}" for c in cycles]
    if cycles:
        pytest.fail(f"{len(cycles)} import cycle(s) inside omnivad (strongly connected modules):\n" + "\n".join(lines),
                    pytrace=False)


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert [c for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
    assert _cycle_in(["a", "b", "c"], graph) == ["a", "b", "c", "a"]


def test_data_does_not_import_methods() -> None:
    modules = {_module_name(p) for p in _py_files(PACKAGE)}
    bad = []
    for p in _py_files(PACKAGE / "data"):
        tree = ast.parse(p.read_text(encoding="utf-8"), str(p))
        for node in _import_nodes(tree, skip_type_checking=False):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(n == "omnivad.methods" or n.startswith("omnivad.methods.") for n in names):
                bad.append(f"{_rel(p)}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve it
                hit = {m for m in _imported(p, modules, skip_type_checking=False) if m.startswith("omnivad.methods")}
                if hit:
                    bad.append(f"{_rel(p)}:{node.lineno}: {ast.unparse(node)}")
        for node in ast.walk(tree):  # importlib.import_module("omnivad.methods...") and the like
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("omnivad.methods"):
                bad.append(f"{_rel(p)}:{node.lineno}: names {node.value!r}")
    if bad:
        pytest.fail("omnivad/data imports from omnivad.methods:\n" + "\n".join(sorted(set(bad))), pytrace=False)


def test_method_agnostic_packages_name_no_method() -> None:
    hits = [h for d in METHOD_AGNOSTIC for h in _grep(PACKAGE / d, METHOD_NAMES)]
    if hits:
        pytest.fail(f"{len(hits)} line(s) of omnivad/{{{','.join(METHOD_AGNOSTIC)}}} name a method "
                    f"(pattern {METHOD_NAMES.pattern}):\n" + "\n".join(hits), pytrace=False)


def test_one_torch_trainer() -> None:
    trainers = _grep(PLATFORM, re.compile(re.escape("TorchTrainer(")))
    if len(trainers) != 1:
        pytest.fail(f"TorchTrainer( occurs {len(trainers)} times in platform/, expected once:\n" + "\n".join(trainers),
                    pytrace=False)


def test_no_os_exit_or_attr_ddp() -> None:
    banned = _grep(PLATFORM, re.compile(r"os\._exit|_AttrDDP"))
    if banned:
        pytest.fail("os._exit / _AttrDDP in platform/:\n" + "\n".join(banned), pytrace=False)
