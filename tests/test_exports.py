"""Packages that re-export on first use (``servewell.exports``): every name of their
``__all__`` resolves, once, and a name they do not export is an AttributeError like any
module's."""

from __future__ import annotations

import importlib

import pytest

LAZY_PACKAGES = ("servewell", "servewell.registry")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_name_of_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert vars(module)[name] is value  # kept on the package: resolved once


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_an_unknown_name_is_an_attribute_error(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="has no attribute 'Nonexistent'"):
        _ = module.Nonexistent
    with pytest.raises(ImportError):
        exec(f"from {package} import Nonexistent")
