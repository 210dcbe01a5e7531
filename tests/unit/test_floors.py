"""The house as the code's own imports draw it: every module imports only from its own
floor or below, and no modules import each other in a circle.

    4  cli/                       the command line
    3  workflows/                 Hera definitions, generated from the pipeline's DAG
    2  steps/   grpc_server/      the pipeline; the query service beside it (not each other)
    1  airtime/                   the library
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {"airtime": 1, "steps": 2, "grpc_server": 2, "workflows": 3, "deploy": 4, "cli": 4}
SIDE_BY_SIDE = {frozenset({"steps", "grpc_server"})}  # same floor, and still apart


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    found = {}
    for package in FLOORS:
        for path in (ROOT / package).rglob("*.py"):
            if "v1" not in path.relative_to(ROOT).parts:  # generated protobuf code
                found[_module(path)] = path
    return found


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in modules}
    return found


SOURCES = _sources()
GRAPH = {module: _imports(path, set(SOURCES)) for module, path in SOURCES.items()}


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_a_module_imports_nothing_from_a_floor_above_it(module: str) -> None:
    own = module.split(".")[0]
    wrong = [
        target for target in GRAPH[module]
        if FLOORS[target.split(".")[0]] > FLOORS[own]
        or frozenset({own, target.split(".")[0]}) in SIDE_BY_SIDE
    ]
    assert wrong == [], f"{module} imports from above (or across) its floor: {wrong}"


def test_no_modules_import_each_other_in_a_circle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            target = target if target in GRAPH else target.rsplit(".", 1)[0]
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target in GRAPH and state.get(target) is None:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_the_installed_package_needs_no_pandas_at_run_time() -> None:
    requires = importlib.metadata.requires("airtime") or []
    runtime = [r for r in requires if "extra ==" not in r]
    assert not [r for r in runtime if r.lower().startswith("pandas")], runtime
    assert any(r.startswith("pandas") and "extra ==" in r for r in requires), requires
