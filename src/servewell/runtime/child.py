"""The child side of ``isolation: process``: build the real runtime, then answer.

A model's child process is a fresh interpreter (``python -c``, :data:`CHILD_MAIN`):
nothing inherited from the server's threads or event loop, only two file descriptors,
its end of the calls' pipe and the read end of the *lifeline*. :func:`main` reads its
spec, builds the runtime with :func:`~servewell.runtime.factory.create_runtime`, says
``ready`` (platform and signature) or the error that stopped it, then answers one call
at a time: ``warm_up``, ``predict`` and ``close``.

It never outlives the server: a thread waits on the lifeline, whose write end only the
server holds; when the server process ends, however it ends, the pipe reads EOF and the
child removes its scratch folder and exits at once. ``SIGINT`` is ignored (a Ctrl-C
reaches the whole process group; the server stops its children itself).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from servewell.core.signature import Signature
from servewell.runtime.base import Runtime
from servewell.runtime.bundle import remove_unpacked
from servewell.runtime.transfer import (
    SHARED_ABOVE_BYTES,
    Placed,
    Segments,
    error_to_wire,
    place,
    room_for,
    shared_bytes,
    take,
)
from servewell.settings import RuntimeSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """What a child needs to build the runtime (pickled across to it)."""

    format: str
    path: Path
    settings: RuntimeSettings | None
    signature: Signature | None
    scratch: Path
    """A folder of the child's own for temporary files (a Python model's unpacked
    bundle): the server removes it when the child ends, the child when the server does."""
    setup: Callable[[], None] | None = None
    """Called first in the child (a picklable function: the server's logging set-up)."""


#: prctl's option: the signal this process gets when the thread that started it ends.
PR_SET_PDEATHSIG = 1

#: What the child interpreter runs: ``python -c CHILD_MAIN <conn fd> <lifeline fd>``.
CHILD_MAIN = "from servewell.runtime.child import main; main()"


def main() -> None:
    """The child process's entry point: its pipes from the command line, its spec as
    the first message."""
    conn, lifeline = Connection(int(sys.argv[1])), int(sys.argv[2])
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec: ChildSpec = conn.recv()
    threading.Thread(target=_watch, args=(lifeline, spec.scratch), daemon=True).start()
    try:
        serve(conn, spec)
    finally:  # told to close, or the server is gone (the pipe read EOF)
        _remove(spec.scratch)


def serve(conn: Connection, spec: ChildSpec) -> None:
    """Build the runtime, say ready (or why not), then answer until told to close."""
    if spec.setup is not None:
        spec.setup()
    tempfile.tempdir = str(spec.scratch)
    runtime = _build(conn, spec)
    if runtime is None:
        return
    segments = Segments()
    try:
        _answer(conn, runtime, segments)
    finally:
        segments.close(unlink=False)
        runtime.close()


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the server dies: the lifeline's watcher
    thread cannot notice while the model holds the GIL in C code, or while the child is
    stopped. (The scratch folder is then left to ``servewell gc``.) Linux only; where
    prctl is missing, the lifeline alone watches."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died before the signal was armed
        os._exit(0)


def _watch(lifeline: int, scratch: Path) -> None:
    """Exit as soon as the server process is gone (its end of the lifeline closes)."""
    with contextlib.suppress(OSError):
        os.read(lifeline, 1)
    _remove(scratch)
    os._exit(0)


def _remove(scratch: Path) -> None:
    """Remove the scratch folder (the main thread and the watcher may race to it)."""
    with contextlib.suppress(OSError):
        remove_unpacked(scratch)


def _build(conn: Connection, spec: ChildSpec) -> Runtime | None:
    from servewell.runtime.factory import create_runtime

    try:
        runtime = create_runtime(spec.format, spec.path, spec.settings, spec.signature)
        runtime.load()
        conn.send(("ready", runtime.platform, runtime.describe()))
    except BaseException as exc:
        conn.send(("error", error_to_wire(exc)))
        return None
    return runtime


def _answer(conn: Connection, runtime: Runtime, segments: Segments) -> None:
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "close":
            return
        try:
            reply = _handle(message, runtime, segments)
        except Exception as exc:
            if not isinstance(exc, ValueError):  # the model's failure, not the caller's
                logger.warning("predict failed in the model's process", exc_info=True)
            conn.send(("error", error_to_wire(exc)))
            continue
        conn.send(("ok", reply))


def _handle(message: tuple[Any, ...], runtime: Runtime, segments: Segments) -> Any:
    if message[0] == "warm_up":
        runtime.warm_up()
        return None
    _, inputs, reply_segment = message
    if isinstance(inputs, Placed):
        inputs = take(inputs, segments.attached("request", inputs.segment))
    outputs = runtime.predict(inputs)
    if reply_segment is not None and shared_bytes(outputs) > SHARED_ABOVE_BYTES:
        name, size = reply_segment
        if room_for(outputs) <= size:
            return place(outputs, segments.attached("reply", name))
    return outputs
