"""No import cycles between servewell's modules, of any kind.

The graph has an edge for every ``import`` and ``from ... import`` anywhere in a module:
at the top, inside functions, under ``if TYPE_CHECKING:``. A function-local import hides
a cycle from Python at import time, not from a reader, so it counts the same.
``from servewell.x import y`` is an edge to ``servewell.x.y`` when that is a module, else
to ``servewell.x`` (the package, whose ``__init__`` re-exports are edges of their own).
"""

from __future__ import annotations

import ast
from pathlib import Path

import servewell

Graph = dict[str, set[str]]


def module_graph(root: Path, package: str) -> Graph:
    """Every module of the package at ``root`` -> the package's modules it imports."""
    modules = {_module_name(path, root, package): path for path in sorted(root.rglob("*.py"))}
    graph: Graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            for imported in _imported(node, name, is_package):
                target = _resolve(imported, modules)
                if target is not None and target.split(".")[0] == package:
                    targets.add(target)
        graph[name] = targets
    return graph


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[tuple[str, str | None]]:
    """(module, name or None) pairs one import statement brings in."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - (node.level - 1)]
        base = ".".join([*parent, base] if base else parent)
    return [(base, alias.name) for alias in node.names]


def _resolve(imported: tuple[str, str | None], modules: dict[str, Path]) -> str | None:
    base, name = imported
    if name is not None and f"{base}.{name}" in modules:
        return f"{base}.{name}"
    if base in modules:
        return base
    return None  # outside the package (or a module that does not exist)


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component
    of more than one module, and per module importing itself."""
    cycles = []
    for component in _components(graph):
        start = min(component)
        if len(component) == 1 and start not in graph[start]:
            continue
        cycles.append(_cycle_through(start, component, graph))
    return sorted(cycles)


def _components(graph: Graph) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(start: str, component: set[str], graph: Graph) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``component`` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start] * 2
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")


def _servewell_cycles() -> list[list[str]]:
    graph = module_graph(Path(servewell.__file__).parent, "servewell")
    assert "servewell.core.signature" in graph  # the walk found the modules
    return find_cycles(graph)


def _describe(cycles: list[list[str]]) -> str:
    return "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_servewell_has_no_import_cycles() -> None:
    cycles = _servewell_cycles()
    assert not cycles, _describe(cycles)


#: The packages issue #10 split out of ``pipeline/``: held to no cycles already.
MODEL_LIFECYCLE = ("training", "reports", "registration", "optimize", "export")


def test_no_cycle_runs_through_the_model_lifecycle_packages() -> None:
    prefixes = tuple(f"servewell.{package}." for package in MODEL_LIFECYCLE)
    cycles = [c for c in _servewell_cycles() if any(m.startswith(prefixes) for m in c)]
    assert not cycles, _describe(cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_every_kind_of_import_makes_an_edge(tmp_path: Path) -> None:
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from pkg.api import run\n",
            "api.py": "def run():\n    from pkg import models\n",
            "models.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.sub.thing import Thing\n"
            ),
            "sub/__init__.py": "",
            "sub/thing.py": "from .. import api\nfrom . import other\nimport pkg.sub.other\n",
            "sub/other.py": "import json\nfrom pkg.missing import nothing\n",
        },
    )
    graph = module_graph(tmp_path / "pkg", "pkg")
    assert graph == {
        "pkg": {"pkg.api"},
        "pkg.api": {"pkg.models"},
        "pkg.models": {"pkg.sub.thing"},
        "pkg.sub": set(),
        "pkg.sub.thing": {"pkg.api", "pkg.sub.other"},
        "pkg.sub.other": set(),
    }
    assert find_cycles(graph) == [["pkg.api", "pkg.models", "pkg.sub.thing", "pkg.api"]]


def test_a_module_importing_itself_is_a_cycle() -> None:
    graph = {"a": {"a"}, "b": {"c"}, "c": set()}
    assert find_cycles(graph) == [["a", "a"]]
