"""The import structure of the product packages, read from their source (every import statement,
those inside functions and under ``TYPE_CHECKING`` included).

* The packages stand in layers: ``broker`` at the bottom, ``simulator`` and ``gateway`` on it,
  ``dashboard`` on top; none imports ``testkit``, ``bench`` or ``tests``.
* No module imports itself back, through any chain of modules.
* Inside ``dashboard``, each part imports only parts listed below it in the table of
  ``dashboard/__init__.py`` (the table is the rule, so it cannot drift from the code).
* Modules stay small and functions short.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import dashboard

ROOT = Path(__file__).resolve().parent.parent
#: each product package, and the packages of ours it may import
PACKAGES = {
    "broker": set(),
    "simulator": {"broker"},
    "gateway": {"broker"},
    "dashboard": {"broker", "gateway", "simulator"},
}
OURS = {*PACKAGES, "testkit", "bench", "tests"}
MAX_MODULE_LINES = 430
MAX_FUNCTION_LINES = 60


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


MODULES = dict(modules())


def resolve(target: str) -> str | None:
    """The module of ours ``target`` names (its longest prefix that is a module); a name in
    ``testkit``, ``bench`` or ``tests`` as it is; ``None`` for anything else."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if (prefix := ".".join(parts[:end])) in MODULES:
            return prefix
    return target if parts[0] in OURS else None


def imports_of(name: str, path: Path) -> set[str]:
    """The modules of ours that ``name`` imports (``from a import b``: ``a.b`` when that is a
    module, else ``a``)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.update(resolve(f"{target}.{alias.name}") for alias in node.names)
    return {m for m in found if m is not None} - {name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def test_the_graph_reads_what_the_modules_import() -> None:
    assert "broker.nonce" in GRAPH["broker.client"]
    assert "dashboard.monitor.events" in GRAPH["dashboard.history.store"]
    assert "gateway.core" in GRAPH["gateway.routes"]


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_the_packages_below_them(package: str) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in {package, *PACKAGES[package]}
    )
    assert wrong == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (each a circle of imports)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_module_imports_itself_back() -> None:
    assert strongly_connected(GRAPH) == []


def test_a_circle_is_seen() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def dashboard_parts() -> list[str]:
    """The parts of ``dashboard``, top first, from the table in its docstring."""
    doc = dashboard.__doc__ or ""
    return re.findall(r"^``(\w+)``", doc, flags=re.M)


def part_of(name: str) -> str:
    """``dashboard.monitor.polling`` is in ``monitor``; the package itself (its version) in none."""
    return name.split(".")[1] if name.count(".") else ""


def test_dashboard_parts_import_only_parts_below_them() -> None:
    parts = dashboard_parts()
    assert {"cli", "web", "ui", "monitor", "checks", "history", "exporter"} <= set(parts)
    rank = {part: i for i, part in enumerate(parts)}
    rank[""] = len(parts)  # ``dashboard`` itself: ``__version__`` only, below every part
    wrong = sorted(
        f"{name} ({part_of(name)}) imports {target} ({part_of(target)})"
        for name, targets in GRAPH.items()
        if name.startswith("dashboard.")
        for target in targets
        if target.startswith("dashboard.") and rank[part_of(target)] < rank[part_of(name)]
    )
    assert wrong == []


def test_every_dashboard_module_belongs_to_a_listed_part() -> None:
    parts = set(dashboard_parts())
    assert sorted({part_of(n) for n in MODULES if n.startswith("dashboard.")} - parts) == []
    assert part_of("dashboard.ui.screens.overview") == "ui"


def test_modules_are_small_and_functions_short() -> None:
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(GRAPH[start])
    while todo:
        if (module := todo.pop()) not in seen:
            seen.add(module)
            todo.extend(GRAPH.get(module, ()))
    return seen


def test_the_gateway_core_knows_nothing_of_http_servers_or_the_command_line() -> None:
    above_core = {f"gateway.{m}" for m in ("routes", "server", "cli", "clientcli", "__main__")}
    assert {"gateway.core", "gateway.answers"} <= reachable("gateway.routes")
    assert reachable("gateway.core") & above_core == set()
