"""How much memory a process holds and how much the machine gives it (Linux's ``/proc``
and cgroup files; read when asked, never at import).

The resident set (RSS) is what the kernel counts against the machine and the cgroup:
the number that decides an OOM kill, so it is what the memory budget and its metrics use.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

#: A cgroup's memory limit: v2 (the unified hierarchy), then v1's memory controller.
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def resident_bytes(pid: int | None = None) -> int:
    """The resident set of process ``pid`` (None: this one), from ``/proc/<pid>/statm``;
    0 for a process that is gone. Without ``/proc`` (not Linux), this process's peak
    resident set, the nearest the standard library knows."""
    try:
        fields = Path(f"/proc/{pid or 'self'}/statm").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        if pid is not None:
            return 0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def machine_memory_bytes() -> int | None:
    """The memory this process may use at most: the machine's (``MemTotal``), or its
    cgroup's limit when lower (a container's); None when neither can be read."""
    limits = [limit for limit in (_mem_total(), *map(_cgroup_limit, CGROUP_LIMITS)) if limit]
    return min(limits, default=None)


def _mem_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return None


def _cgroup_limit(path: Path) -> int | None:
    """A cgroup limit file's bytes; None for ``max`` (v2), v1's "unlimited" (a number
    near 2**63) and a file that is not there."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None
    if not text.isdigit() or int(text) >= 2**60:
        return None
    return int(text)
