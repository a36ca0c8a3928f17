"""No import circle in the installed nonvon package (core, simulators, models, energy models)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nonvon

PACKAGES = ("nonvon", "nonvon.simulators", "nonvon.models", "nonvon.energy_models")


def _modules() -> dict[str, Path]:
    """Every module of the installed packages, by dotted name (each folder from its own spec,
    since the package-dir mapping puts them in different folders of the checkout)."""
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        spec = importlib.util.find_spec(pkg)
        assert spec is not None and spec.submodule_search_locations, pkg
        for root in map(Path, spec.submodule_search_locations):
            for path in root.rglob("*.py"):
                rel = path.relative_to(root).with_suffix("")
                parts = [p for p in rel.parts if p != "__init__"]
                found.setdefault(".".join([pkg, *parts]), path)
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports: at module level and inside functions too (a
    deferred import still ties two modules in a circle; only ``if TYPE_CHECKING:`` is left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    out: set[str] = set()
    for stmt in ast.walk(tree):
        if id(stmt) in typing_only:
            continue
        if isinstance(stmt, ast.Import):
            targets = [a.name for a in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.level:  # `from . import x`, `from ..cells import y`
                base = package.split(".")
                base = base[: len(base) - (stmt.level - 1)]
                mod = ".".join(base + ([stmt.module] if stmt.module else []))
            else:
                mod = stmt.module or ""
            # `from pkg import sub` imports the submodule; `from pkg import name` the package
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod
                       for a in stmt.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, as the list of modules around it, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_finder_sees_every_package():
    mods = _modules()
    assert "nonvon.cells" in mods and "nonvon.simulators.gpu.simulator" in mods
    assert any(m.startswith("nonvon.energy_models.") for m in mods)
    assert any(m.startswith("nonvon.models.") for m in mods)
    assert Path(nonvon.__file__).parent in {p.parent for p in mods.values()}


def test_the_cycle_finder_names_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_relative_and_package_imports_are_resolved(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nfrom . import cells\n"
                   "from .executors import execute\nimport nonvon.grids\n"
                   "if TYPE_CHECKING:\n    from nonvon.report import x\n"
                   "def f():\n    from nonvon import sweep\n")
    known = {"nonvon", "nonvon.cells", "nonvon.executors", "nonvon.grids", "nonvon.sweep",
             "nonvon.report"}
    assert _imports("nonvon.m", src, known) == {"nonvon.cells", "nonvon.executors", "nonvon.grids",
                                                "nonvon.sweep"}


def test_no_import_circle_in_nonvon():
    mods = _modules()
    known = set(mods)
    graph = {name: _imports(name, path, known) for name, path in mods.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)
