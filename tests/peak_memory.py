"""Running a command in a child process and reading its peak memory, for tests that a
huge input is refused in bounded memory (a measure, not a timing: the machine is busy)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Far above what refusing a file needs (~60 MB), far below reading a gigabyte whole.
BOUNDED_RSS_BYTES = 500 * 1024 * 1024


@dataclass(frozen=True)
class Measured:
    exit_code: int
    stderr: str
    peak_rss_bytes: int


def run_measured(code: str, *args: str, cwd: Path) -> Measured:
    """``python -c code args`` with this test's environment; its peak RSS from
    ``os.wait4`` (this child's own figure, not the largest of every child so far, as
    ``getrusage(RUSAGE_CHILDREN)`` would give)."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert child.stderr is not None
    with child.stderr:
        stderr = child.stderr.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Measured(child.returncode, stderr, usage.ru_maxrss * 1024)  # Linux: KiB


def sparse_file(path: Path, size_bytes: int = 1 << 30) -> Path:
    """A file of ``size_bytes`` NUL bytes that takes no disk space."""
    with path.open("wb") as file:
        file.truncate(size_bytes)
    return path
