"""Parquet in or out of a batch job without pyarrow: one line saying how to get it
(`servewell batch -o scored.parquet` died with a traceback: README walk finding)."""

from __future__ import annotations

import sys

import pytest

from servewell.errors import InvalidInput
from servewell.jobs.tables import pyarrow_modules


def test_parquet_without_pyarrow_is_one_line_saying_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # an import of it now fails
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InvalidInput, match=r"pip install 'servewell\[parquet\]'"):
        pyarrow_modules()
