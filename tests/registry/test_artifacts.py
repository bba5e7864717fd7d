"""The artifact store: a folder it cannot write is a clear StorageFailed, not an OSError."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.errors import StorageFailed
from servewell.registry.artifacts import LocalArtifactStore


def test_a_store_it_cannot_write_names_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "artifacts"
    blocker.write_text("a file where the store's folder should be")
    store = LocalArtifactStore(blocker / "store")
    with pytest.raises(StorageFailed, match=f"cannot write to the artifact store {blocker}"):
        store.put_bytes(b"model bytes")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model bytes")
    with pytest.raises(StorageFailed, match="cannot write to the artifact store"):
        store.put_file(model)
