"""The core's dependency order: no module imports a higher layer, and no import circle.

The layers are the numbered list under "Dependency order" in docs/architecture.md, read from
there, so the page and the code cannot drift apart. Every import statement of every module under
``semid_studio/core`` counts, those inside functions included (a lazy import is a dependency too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_DIR = REPO_ROOT / "semid_studio" / "core"
CORE = "semid_studio.core"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"


def read_layers(text: str) -> list[tuple[str, ...]]:
    """The layers, lowest first: each line ``N. `a`, `b` ...`` of the "Dependency order" section."""
    section = text.split("## Dependency order", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        if re.match(r"\d+\. ", line):
            names = tuple(re.findall(r"`([\w.]+)`", line.split(" — ")[0]))
            assert names, f"no module named on the layer line {line!r}"
            layers.append(names)
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(CORE_DIR.rglob("*.py"))}


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The semid_studio modules ``path`` imports (``from pkg import name`` counts as pkg.name
    when that is a module, else as pkg)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("semid_studio"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("semid_studio"):
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = core_modules()
    return {name: imports_of(path, set(modules)) for name, path in modules.items()}


def layer_of(module: str, layers: list[tuple[str, ...]]) -> int | None:
    """The layer of a core module: its longest prefix named in the list (the core package and
    ``semid_studio`` itself, which only holds the version, are below everything); None for a
    module outside the core or in no layer."""
    if module in (CORE, "semid_studio"):
        return -1
    if not module.startswith(CORE + "."):
        return None
    rest = module[len(CORE) + 1:]
    best, best_len = None, -1
    for i, names in enumerate(layers):
        for prefix in names:
            if (rest == prefix or rest.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    return best


def layer_violations(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Every import of a higher layer (or of anything outside the core), as readable lines."""
    out = []
    for module, targets in sorted(graph.items()):
        own = layer_of(module, layers)
        for target in sorted(targets):
            if layer_of(target, layers) == -1:
                continue
            if not target.startswith(CORE + "."):
                out.append(f"{module} imports {target}, which is outside the core")
                continue
            theirs = layer_of(target, layers)
            if theirs is not None and own is not None and theirs > own:
                out.append(f"{module} (layer {own + 1}) imports {target} (layer {theirs + 1})")
    return out


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a graph (each as the modules along it, first repeated last)."""
    cycles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


@pytest.fixture(scope="module")
def layers() -> list[tuple[str, ...]]:
    return read_layers(ARCHITECTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_core_module_has_a_layer(graph, layers):
    missing = sorted(m for m in graph if layer_of(m, layers) is None)
    assert not missing, f"add these modules to the dependency order in docs/architecture.md: {missing}"


def test_no_core_module_imports_a_higher_layer(graph, layers):
    problems = layer_violations(graph, layers)
    assert not problems, "\n".join(problems)


def test_no_import_circle_in_the_core(graph):
    circles = import_cycles(graph)
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_the_check_fails_when_a_lower_layer_imports_a_higher_one(graph, layers):
    # the store (layer 3) reaching up into the joint search package, and back down again
    bad = {m: set(t) for m, t in graph.items()}
    bad[f"{CORE}.store.project"].add(f"{CORE}.search.queries")
    problems = layer_violations(bad, layers)
    assert any(p.startswith(f"{CORE}.store.project ") and f"{CORE}.search.queries" in p for p in problems)
    assert import_cycles(bad), "search.queries imports the store: the new edge closes a circle"
    # the recommender importing the joint model it sits under
    bad = {m: set(t) for m, t in graph.items()}
    bad[f"{CORE}.generative.decode"].add(f"{CORE}.generative.joint.views")
    assert any(p.startswith(f"{CORE}.generative.decode ") for p in layer_violations(bad, layers))
    # the core importing the GUI
    bad[f"{CORE}.errors"] = {"semid_studio.gui.app"}
    assert any("outside the core" in p for p in layer_violations(bad, layers))


def test_the_check_reads_relative_and_lazy_imports():
    found = imports_of(CORE_DIR / "search" / "baselines.py", set(core_modules()))
    assert f"{CORE}.search.strategies" in found  # `from . import strategies` inside a function
    assert {f"{CORE}.errors", f"{CORE}.store", f"{CORE}.search.metrics"} <= found
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
