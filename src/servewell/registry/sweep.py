"""Sweeping the artifact store: files no version references, and staging leftovers.

Registration never deletes a file (see :mod:`servewell.registry.artifacts`), so a failed
or killed registration leaves one behind. The sweep removes

* artifact files that no version references, and
* ``staging/upload-*`` files (a registration killed while copying),

when they are older than a grace period. Safety against a registration in progress on
any process or machine rests on two facts: storing bytes already present refreshes the
file's modification time before the version is committed, and the sweep moves a file
aside (an atomic rename) before its last check, so a registration that refreshes it
after that check finds it gone and writes it again. A file is deleted only when, once
moved aside, it is still old and still unreferenced; otherwise it goes back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servewell.registry.artifacts import LocalArtifactStore
    from servewell.registry.sql import SqlRegistry

#: Files younger than this are kept: a registration may be about to reference them.
DEFAULT_GRACE_S = 3600.0

UPLOAD_PREFIX = "upload-"
_ASIDE_PREFIX = "sweep-"

UNREFERENCED = "unreferenced artifact"
STAGING = "staging leftover"


@dataclass(frozen=True, slots=True)
class Leftover:
    """A file the sweep would remove, and why."""

    path: Path
    size_bytes: int
    modified_at: datetime
    reason: str


class StoreSweep:
    """Find and remove leftovers of one store, checked against one registry."""

    def __init__(
        self,
        registry: SqlRegistry,
        store: LocalArtifactStore,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        self.registry = registry
        self.store = store
        self.grace_s = grace_s

    def find(self) -> list[Leftover]:
        """What :meth:`remove` would delete now (a dry run deletes nothing)."""
        self._restore_set_aside()
        referenced = self.registry.referenced_digests()
        artifacts = (p for p in self.store.stored_files() if p.name not in referenced)
        found = [self._leftover(path, UNREFERENCED) for path in artifacts]
        found += [self._leftover(path, STAGING) for path in self.store.staging_files(UPLOAD_PREFIX)]
        return [item for item in found if item is not None]

    def remove(self, leftovers: Iterable[Leftover]) -> list[Leftover]:
        """Delete each leftover that is still one; the ones deleted."""
        removed = []
        for item in leftovers:
            if item.reason == STAGING:
                gone = self._remove_staging(item.path)
            else:
                gone = self._remove_artifact(item.path)
            if gone:
                removed.append(item)
        return removed

    def _leftover(self, path: Path, reason: str) -> Leftover | None:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile
            return None
        if not self._is_old(stat.st_mtime):
            return None
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return Leftover(path, stat.st_size, modified, reason)

    def _is_old(self, mtime: float) -> bool:
        return datetime.now(UTC).timestamp() - mtime >= self.grace_s

    def _remove_staging(self, path: Path) -> bool:
        try:
            if not self._is_old(path.stat().st_mtime):
                return False  # still being written
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _remove_artifact(self, path: Path) -> bool:
        aside = self._aside_path(path.name)
        try:
            os.replace(path, aside)  # from now on, a registration writes the file anew
        except FileNotFoundError:
            return False
        if self._is_old(aside.stat().st_mtime) and not self.registry.is_artifact_referenced(
            path.name
        ):
            aside.unlink()
            return True
        self._put_back(aside, path)
        return False

    def _restore_set_aside(self) -> None:
        """Put back what an interrupted sweep moved aside; it is judged again."""
        for aside in self.store.staging_files(_ASIDE_PREFIX):
            digest = aside.name.removeprefix(_ASIDE_PREFIX)
            self._put_back(aside, self.store.path_of_digest(digest))

    def _aside_path(self, digest: str) -> Path:
        staging = self.store.root / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        return staging / f"{_ASIDE_PREFIX}{digest}"

    @staticmethod
    def _put_back(aside: Path, path: Path) -> None:
        if path.exists():  # written again meanwhile: the same bytes
            aside.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(aside, path)
