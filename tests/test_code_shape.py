"""The shape the code keeps (STYLE.md): modules of one concept, small functions.

A module over ``MAX_MODULE_LINES`` or a function over ``MAX_FUNCTION_LINES`` fails this
test unless it is listed below with the reason it reads better whole.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "servewell"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: "path/to/module.py:function" -> why it is longer.
LONG_FUNCTIONS = {
    "registry/migrations/versions/0001_registry.py:upgrade": (
        "the first schema, one create_table per table: reads as the schema itself"
    ),
    "observability/metrics.py:__init__": (
        "declares every metric family the server exports, one statement each: the list"
    ),
}
LONG_MODULES = {
    "errors.py": "the one error tree STYLE.md asks for: one small class per condition",
    "http/protocol.py": (
        "one uvicorn protocol subclass: its parser callbacks, the fast lane, the edge limits"
        " and the shutdown act on the same per-connection state (the limits' timer and"
        " answers are in http/edge_limits.py already)"
    ),
}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _long_functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append((node.name, length))
    return found


def test_no_module_is_too_long() -> None:
    too_long = {
        str(path.relative_to(SRC)): lines
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    unexplained = {name: lines for name, lines in too_long.items() if name not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_MODULE_LINES} lines: {unexplained}"


def test_no_function_is_too_long() -> None:
    unexplained = [
        f"{where} ({lines} lines)"
        for path in _modules()
        for name, lines in _long_functions(path)
        if (where := f"{path.relative_to(SRC)}:{name}") not in LONG_FUNCTIONS
    ]
    assert not unexplained, f"functions over {MAX_FUNCTION_LINES} lines: {unexplained}"


def test_every_listed_exception_still_exists() -> None:
    """A reason for a function or module that is gone (or short now) is stale."""
    long_now = {
        f"{path.relative_to(SRC)}:{name}"
        for path in _modules()
        for name, _ in _long_functions(path)
    }
    assert set(LONG_FUNCTIONS) <= long_now, set(LONG_FUNCTIONS) - long_now
    for name in LONG_MODULES:
        lines = len((SRC / name).read_text(encoding="utf-8").splitlines())
        assert lines > MAX_MODULE_LINES, f"{name} is {lines} lines now: drop its exception"
