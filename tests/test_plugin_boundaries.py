"""The core names no plugin: nothing under nonvon/ or energy_models/ imports nonvon.simulators,
and no core module spells a paradigm's name (they come from the paradigm registry).

A static scan of the source (ast), so it also covers imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nonvon.paradigms import paradigm_names

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted([*(ROOT / "nonvon").rglob("*.py"), *(ROOT / "energy_models").rglob("*.py")])
# energy_models/ is installed as nonvon.energy_models; a relative import there resolves the same
PLUGINS = "nonvon.simulators"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    package = ("nonvon.energy_models" if path.is_relative_to(ROOT / "energy_models") else "nonvon")
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])
            out += [(node.lineno, base)] + [(node.lineno, f"{base}.{a.name}") for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            out.append((node.lineno, str(node.args[0].value)))
    return out


def test_the_scan_sees_the_core():
    assert ROOT / "nonvon" / "report.py" in CORE and ROOT / "energy_models" / "preset.py" in CORE
    bad = ROOT / "simulators" / "optical" / "figures.py"  # a plugin module that imports a plugin
    assert any(m.startswith(PLUGINS) for _, m in imported_modules(bad)), "the scan finds nothing"


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_plugin(path):
    hits = [f"line {n}: {m}" for n, m in imported_modules(path)
            if m == PLUGINS or m.startswith(PLUGINS + ".")]
    assert not hits, (f"{path.relative_to(ROOT)} imports a plugin ({'; '.join(hits)}): reach "
                      "plugins through nonvon.registry (entry points), never by module")


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_spells_no_paradigm_name(path):
    names = set(paradigm_names())
    hits = [f"line {n.lineno}: {n.value!r}" for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names]
    assert not hits, (f"{path.relative_to(ROOT)} names paradigms ({'; '.join(hits)}): ask "
                      "nonvon.paradigms / the registry instead")
