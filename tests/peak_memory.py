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


#: Prepended to the child's code: at exit it writes its own high-water RSS (VmHWM, KiB)
#: to the file the environment names. Not ``ru_maxrss``: Linux carries the parent's
#: high-water mark across the exec of a vforked child, so a child of a big pytest
#: process "peaked" at pytest's size (1.5 GB late in the full suite).
_REPORT_PEAK = """import atexit, os
def _report_peak():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    with open(os.environ["SERVEWELL_TEST_PEAK_FILE"], "w") as out:
        out.write(line.split()[1])
atexit.register(_report_peak)
"""


def run_measured(code: str, *args: str, cwd: Path) -> Measured:
    """``python -c code args`` with this test's environment, and its own peak RSS."""
    peak_file = cwd / "peak-rss-kib"
    environment = {**os.environ, "SERVEWELL_TEST_PEAK_FILE": str(peak_file)}
    run = subprocess.run(
        [sys.executable, "-c", _REPORT_PEAK + code, *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )
    peak_kib = int(peak_file.read_text(encoding="utf-8"))
    return Measured(run.returncode, run.stderr.decode(), peak_kib * 1024)


def sparse_file(path: Path, size_bytes: int = 1 << 30) -> Path:
    """A file of ``size_bytes`` NUL bytes that takes no disk space."""
    with path.open("wb") as file:
        file.truncate(size_bytes)
    return path
