"""The artifact store: model files kept by the sha256 of their bytes.

URIs are relative to the store (``store://sha256/ab/abcdef…``), so a database keeps
working when the store's folder moves, and a later object-store backend (S3, GCS) only
changes the root. The hash is checked on every fetch: bytes changed after registration
are refused with :class:`~servewell.errors.ArtifactTampered`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from servewell.errors import ArtifactTampered, InvalidArtifact, NotFound, StorageFailed
from servewell.registry.records import StoredArtifact

SCHEME = "store://"
_CHUNK = 1 << 20


class LocalArtifactStore:
    """Content-addressed files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_file(self, source: Path) -> tuple[StoredArtifact, bool]:
        """Store a copy of ``source``; also says whether these bytes were new to the store."""
        try:
            with source.open("rb") as reader:
                return self._put(reader.read, source.name)
        except FileNotFoundError:
            raise InvalidArtifact(f"{source} does not exist") from None
        except IsADirectoryError:
            raise InvalidArtifact(f"{source} is a folder, not a model file") from None

    def put_bytes(self, data: bytes) -> tuple[StoredArtifact, bool]:
        chunks = iter([data])
        return self._put(lambda _size: next(chunks, b""), "bytes")

    def fetch(self, uri: str, sha256: str) -> Path:
        """The local path of an artifact, after checking its bytes still hash to ``sha256``."""
        path = self.path_of(uri)
        if not path.is_file():
            raise NotFound(f"artifact {uri} is missing from the store at {self.root}")
        actual = file_sha256(path)
        if actual != sha256:
            raise ArtifactTampered(uri, sha256, actual)
        return path

    def delete(self, uri: str) -> None:
        self.path_of(uri).unlink(missing_ok=True)

    def path_of(self, uri: str) -> Path:
        if not uri.startswith(SCHEME):
            raise NotFound(f"artifact {uri} is not in this store")
        return self.root / uri.removeprefix(SCHEME)

    def _put(self, read: object, label: str) -> tuple[StoredArtifact, bool]:
        try:
            return self._write(read, label)
        except OSError as exc:
            raise StorageFailed(
                f"cannot write to the artifact store {self.root}: {exc.strerror or exc}"
            ) from exc

    def _write(self, read: object, label: str) -> tuple[StoredArtifact, bool]:
        staging = self.root / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temp_name = tempfile.mkstemp(dir=staging, prefix="upload-")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as writer:
                while chunk := read(_CHUNK):  # type: ignore[operator]
                    digest.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            if size == 0:
                raise InvalidArtifact(f"{label} is empty")
            sha = digest.hexdigest()
            key = f"sha256/{sha[:2]}/{sha}"
            target = self.root / key
            created = not target.exists()
            if created:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, target)  # atomic: readers see all bytes or none
            return StoredArtifact(SCHEME + key, sha, size), created
        finally:
            temp.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
