"""A model's child process, seen from the server: the handle on one child, how it
ended, and how long to wait before the next one (exponential backoff, capped)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from servewell.runtime.bundle import remove_unpacked
from servewell.runtime.transfer import SEGMENT_PREFIX

CRASH = "crash"
"""The child ended on its own (a segfault, ``os._exit``, an exception at the top) or was
killed from outside (the OOM killer, an operator)."""
HANG = "hang"
"""The server killed it after too many deadlines in a row."""
START_FAILED = "start_failed"
"""A restarted child failed to load or warm up."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When a model's child is killed and how soon a new one starts.

    The first restart after a child that ran for at least ``stable_after_s`` waits
    ``first_delay_s``; each further one in a row waits twice as long, up to
    ``max_delay_s`` (0.5 s, 1 s, 2 s, ... 30 s), like systemd's and Kubernetes' crash
    loops, so a model that dies at every start does not take a core restarting."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    stable_after_s: float = 30.0
    timeouts_to_kill: int = 3
    """Deadlines exceeded in a row (``restart_after_timeouts``) before a kill."""
    stop_grace_s: float = 2.0
    """At shutdown: how long a child may take to leave after being asked, then after
    SIGTERM, before SIGKILL."""

    def delay_s(self, crashes_in_a_row: int) -> float:
        """The wait before the restart that follows the ``crashes_in_a_row``-th crash."""
        return min(self.max_delay_s, self.first_delay_s * 2.0 ** max(crashes_in_a_row - 1, 0))


@dataclass(frozen=True, slots=True)
class ChildExit:
    """One child's unplanned end, as logged and counted."""

    model: str
    version: int
    pid: int
    exit_code: int | None
    """The status it exited with, or minus the signal that killed it (as subprocess)."""
    reason: str
    """:data:`CRASH`, :data:`HANG` or :data:`START_FAILED`."""
    uptime_s: float
    restart_in_s: float

    @property
    def signal(self) -> str | None:
        code = self.exit_code
        if code is None or code >= 0:
            return None
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"

    def fields(self) -> dict[str, object]:
        """The log line's fields."""
        return {
            "message": f"the process of {self.model}@{self.version} ended ({self.reason}, "
            f"{describe_exit(self.exit_code)}); restarting in {self.restart_in_s:g} s",
            "event": "model_process_exit",
            "model": self.model,
            "version": str(self.version),
            "pid": self.pid,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reason": self.reason,
            "uptime_s": round(self.uptime_s, 3),
            "restart_in_s": self.restart_in_s,
        }


def describe_exit(exit_code: int | None) -> str:
    """``"killed by SIGSEGV"``, ``"exit status 1"``."""
    if exit_code is None:
        return "its pipe closed"
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit status {exit_code}"


@dataclass(eq=False)
class Child:
    """One started child process and the server's ends of its pipes."""

    process: subprocess.Popen[bytes]
    conn: Connection
    lifeline: int
    """A pipe's write end, never written: the child exits when it closes, i.e. when this
    process ends, however it ends."""
    scratch: Path
    started_at: float = field(default_factory=time.monotonic)
    _released: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self) -> None:
        """Until the child has ended."""
        self.process.wait()

    def exit_code(self, wait_s: float = 1.0) -> int | None:
        """How it ended (minus the signal that killed it), waiting a little for it to be
        reaped; None while it runs."""
        try:
            return self.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        self.process.kill()  # a no-op once it has been reaped

    def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; then release what it held."""
        if self.exit_code(0) is None:
            self.process.terminate()
            if self.exit_code(grace_s) is None:
                self.process.kill()
                self.process.wait()
        self.release()

    def release(self) -> None:
        """Close the pipes and remove the scratch folder (once; the child has ended)."""
        if self._released:
            return
        self._released = True
        self.conn.close()
        with contextlib.suppress(OSError):
            os.close(self.lifeline)
        remove_unpacked(self.scratch)


#: A child's scratch folder is ``<tmp>/servewell-process-<server pid>-<random>``.
SCRATCH_PREFIX = "servewell-process-"
#: Where POSIX shared memory segments are files.
SHARED_MEMORY = Path("/dev/shm")


def sweep_orphaned_scratch() -> int:
    """Remove the scratch folders and shared segments of servers that are gone: a child
    killed with its server (the kernel's parent-death signal) cannot remove its own,
    nor can a server killed with its whole process group. How many went."""
    removed = 0
    for folder in _orphans(Path(tempfile.gettempdir()), SCRATCH_PREFIX):
        remove_unpacked(folder)
        removed += 1
    for segment in _orphans(SHARED_MEMORY, SEGMENT_PREFIX):
        with contextlib.suppress(FileNotFoundError):  # another server swept it first
            segment.unlink()
            removed += 1
    return removed


def _orphans(folder: Path, prefix: str) -> Iterator[Path]:
    """``folder``'s entries named ``<prefix><pid>-...`` whose process is gone."""
    for path in folder.glob(f"{prefix}*-*"):
        owner = path.name[len(prefix) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            yield path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
