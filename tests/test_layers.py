"""The layering is a checked contract (import-linter, configured in pyproject.toml): the real
package keeps it, and a cycle added on purpose breaks it. And the structure the design asks of
every module, checked here: no import cycle, short functions and classes, a small top level,
no contract that lets an indirect import through."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers.configs import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    command = [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=package_parent, env=env, capture_output=True, text=True)


def test_the_package_keeps_its_layers():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_a_config_that_imports_an_implementation_breaks_the_layers(tmp_path):
    """The ground floor (gan_lab/config) may import nothing of gan_lab but errors."""
    shutil.copytree(ROOT / "gan_lab", tmp_path / "gan_lab")
    schema = tmp_path / "gan_lab" / "config" / "schema.py"
    schema.write_text(schema.read_text() + "\nfrom gan_lab.training.losses import LOSSES  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "gan_lab.config is not allowed to import gan_lab.training.losses" in result.stdout


# The structure the design asks of every module (docs/design/layers.md), checked in-process.
PACKAGE = ROOT / "gan_lab"
MAX_FUNCTION_LINES = 60  # from `def` to the function's last line, docstring included
MAX_CLASS_LINES = 200
MAX_TOP_LEVEL_MODULES = 12  # .py files directly in gan_lab/, __init__.py and __main__.py included


def _import_graph() -> dict[str, set[str]]:
    """Each gan_lab module and the gan_lab modules it imports, anywhere in it: in functions and
    under TYPE_CHECKING too (grimp, which import-linter is built on)."""
    import grimp

    graph = grimp.build_graph("gan_lab", cache_dir=None)
    modules = {m for m in graph.modules if m == "gan_lab" or m.startswith("gan_lab.")}
    return {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), and any
    module that imports itself."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            component = set()
            while not component or module not in component:
                component.add(stack.pop())
            if len(component) > 1 or module in graph[module]:
                found.add(frozenset(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _oversized(path: Path) -> set[str]:
    """The qualified names of the functions over MAX_FUNCTION_LINES and the classes over
    MAX_CLASS_LINES in one file, counted from the `def` or `class` line to the last line."""
    found = set()

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}.{child.name}"
                limit = MAX_CLASS_LINES if isinstance(child, ast.ClassDef) else MAX_FUNCTION_LINES
                if child.end_lineno - child.lineno + 1 > limit:
                    found.add(name)
                walk(child, name)
            else:
                walk(child, prefix)

    walk(ast.parse(path.read_text()), _module_name(path))
    return found


def test_no_module_imports_itself_back():
    """No import cycle among gan_lab's modules, however long, TYPE_CHECKING imports included:
    the layers contract checks none between siblings joined by `:`."""
    cycles = _cycles(_import_graph())
    assert not cycles, sorted(sorted(c) for c in cycles)


def test_no_function_over_60_lines_and_no_class_over_200():
    oversized = set().union(*(_oversized(path) for path in PACKAGE.rglob("*.py")))
    assert not oversized, sorted(oversized)


def test_the_top_of_the_package_stays_small():
    """At most a dozen modules directly in gan_lab/: the rest live in the package of their
    concept (training/, tracking/, cli/, ...)."""
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_every_import_contract_holds_for_indirect_imports_too():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    allowing = [
        contract["name"]
        for contract in contracts["contracts"]
        if str(contract.get("allow_indirect_imports", False)).lower() == "true"
    ]
    assert not allowing
