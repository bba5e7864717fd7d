"""The artifact store: model files kept by the sha256 of their bytes.

URIs are relative to the store (``store://sha256/ab/abcdef…``), so a database keeps
working when the store's folder moves, and a later object-store backend (S3, GCS) only
changes the root. The hash is checked on every fetch: bytes changed after registration
are refused with :class:`~servewell.errors.ArtifactTampered`.

Nothing deletes a file at the moment it stops being needed (a failed registration leaves
its file): another registration of the same bytes, in another process or on another
machine sharing the store, may be about to reference it. ``servewell gc``
(:mod:`servewell.registry.sweep`) removes what no version references once it is older
than a grace period; storing bytes that are already present refreshes the file's
modification time, so a registration in progress always holds a young file.
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

    def stored_files(self) -> list[Path]:
        """Every artifact file in the store (``sha256/ab/<digest>``)."""
        return sorted(path for path in (self.root / "sha256").glob("*/*") if path.is_file())

    def staging_files(self, prefix: str) -> list[Path]:
        return sorted((self.root / "staging").glob(f"{prefix}*"))

    def path_of_digest(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

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
            created = not _refresh(target)
            if created:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, target)  # atomic: readers see all bytes or none
            return StoredArtifact(SCHEME + key, sha, size), created
        finally:
            temp.unlink(missing_ok=True)


def _refresh(target: Path) -> bool:
    """Mark an existing file as in use again (its mtime: see the module docstring);
    False when it is not there (never stored, or swept a moment ago)."""
    try:
        os.utime(target)
    except FileNotFoundError:
        return False
    return True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
