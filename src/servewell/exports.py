"""Re-exports imported on first use, for the package ``__init__`` files that have them.

Importing any module runs every package ``__init__`` on its path: ``servewell/__init__.py``
re-exporting the public API eagerly made ``servewell --help``, ``servewell keys list`` and
every server worker import scikit-learn, SQLAlchemy and httpx before doing anything. Such
a package maps each name to its module and sets ``__getattr__ = lazy_exports(...)``
(PEP 562) outside ``if TYPE_CHECKING:``, where the same names are imported for the type
checker (and for ``tests/test_import_graph.py``, which sees those imports as edges).

Only this module and the standard library are imported here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a module
    path) the first time ``name`` is asked for, and keeps the value on the package."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
