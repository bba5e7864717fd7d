"""Where a job's files live: ``<artifact store>/jobs/<id>/``, the input as uploaded and
one results file per finished chunk (``chunks/000042.jsonl``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from servewell.jobs.results import Row, read_jsonl


class JobFolders:
    """The jobs' folders under ``root`` (the artifact store's ``jobs/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def input(self, job_id: str, table_format: str) -> Path:
        return self.folder(job_id) / f"input.{table_format}"

    def chunk(self, job_id: str, index: int) -> Path:
        return self.folder(job_id) / "chunks" / f"{index:06d}.jsonl"

    def results(self, job_id: str, chunks: list[int]) -> Iterator[list[Row]]:
        """The finished chunks' rows, in order, one chunk in memory at a time."""
        for index in chunks:
            yield read_jsonl(self.chunk(job_id, index))

    def uploads(self, older_than: datetime) -> list[Path]:
        """Uploads still arriving, or left behind, last written before ``older_than``."""
        cutoff = older_than.timestamp()
        folder = self.root / "uploads"
        return [path for path in folder.glob("*.part") if path.stat().st_mtime < cutoff]

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
