"""A registry database that cannot be opened is a clear error naming why, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.errors import InvalidConfig, StorageFailed
from servewell.registry.database import create_registry_engine


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bogus", "the registry database URL does not parse"),
        ("mysql://user:secret@host/db", "SQLite or PostgreSQL, not 'mysql'"),
    ],
)
def test_a_url_it_cannot_use(url: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as caught:
        create_registry_engine(url)
    assert "secret" not in caught.value.message


def test_a_folder_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StorageFailed, match=f"cannot create the folder {blocker}"):
        create_registry_engine(f"sqlite:///{blocker}/registry.db")
