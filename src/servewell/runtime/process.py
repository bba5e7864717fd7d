"""``isolation: process``: a model's runtime in a child process of its own.

:class:`ProcessRuntime` is a :class:`~servewell.runtime.base.Runtime` that wraps another
runtime's spec (format, path, settings, signature). :meth:`~ProcessRuntime.load` starts
a child, a fresh interpreter (spawned, never forked: the server has threads and an
event loop), that builds the real runtime (:mod:`servewell.runtime.child`); calls cross
a pipe, big batches through shared memory (:mod:`servewell.runtime.transfer`).

When the child ends, however it ends, the request it held fails with
:class:`~servewell.errors.ModelCrashed` (502), requests arriving meanwhile with
:class:`~servewell.errors.ModelUnavailable` (503, ``Retry-After``), :attr:`is_up` is
false, the end is logged (one JSON line) and reported to :attr:`on_exit`, and a
monitor thread starts a new child after a backoff (:class:`RestartPolicy`).
:meth:`note_timeout` counts requests past their deadline; at
``RestartPolicy.timeouts_to_kill`` in a row, without an answer in between, the child is
taken for hung and killed (then restarted the same way).

Calls reach one child one at a time (a lock: the batch queue's one worker thread
already serializes them, so it is never contended on the request path).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from servewell.core.signature import Signature
from servewell.errors import InvalidArtifact, ModelCrashed, ModelUnavailable
from servewell.runtime.base import Array
from servewell.runtime.child import CHILD_MAIN, ChildSpec
from servewell.runtime.restart import (
    CRASH,
    HANG,
    SCRATCH_PREFIX,
    START_FAILED,
    Child,
    ChildExit,
    RestartPolicy,
    describe_exit,
    sweep_orphaned_scratch,
)
from servewell.runtime.transfer import (
    SHARED_ABOVE_BYTES,
    Placed,
    Segments,
    error_from_wire,
    place,
    room_for,
    shared_bytes,
    take,
)
from servewell.settings import RuntimeSettings

logger = logging.getLogger(__name__)


class ProcessRuntime:
    """Runs another runtime in a child process, restarted when it ends."""

    may_block = True  # every call waits on another process

    def __init__(
        self,
        format: str,
        path: Path,
        settings: RuntimeSettings | None = None,
        signature: Signature | None = None,
        *,
        model: str = "model",
        version: int = 0,
        policy: RestartPolicy | None = None,
        setup: Callable[[], None] | None = None,
    ) -> None:
        self.format = format
        self.path = path
        self.settings = settings
        self.signature = signature
        self.model = model
        self.version = version
        self.policy = policy or RestartPolicy()
        self.setup = setup
        """Run first in each child (picklable): the server's logging set-up."""
        self.platform = "process"
        """The wrapped runtime's, once loaded."""
        self.on_exit: Callable[[ChildExit], None] | None = None
        """Told of every unplanned end of a child (on the monitor thread)."""
        self._child: Child | None = None
        self._up = False
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        self._timeouts = 0
        self._killed_for: str | None = None
        self._crashes = 0
        self._retry_at = 0.0
        self._start_s = 1.0
        self._segments = Segments()
        self._reply_size = 0

    @property
    def is_up(self) -> bool:
        """Whether a child is loaded and taking calls (false while it restarts)."""
        return self._up

    @property
    def pid(self) -> int | None:
        """The current child's process id (None before load and after close)."""
        child = self._child
        return child.pid if child is not None and self._up else None

    def load(self) -> None:
        self._start()
        self._monitor = threading.Thread(
            target=self._watch, name=f"process-{self.model}@{self.version}", daemon=True
        )
        self._monitor.start()

    def warm_up(self) -> None:
        with self._lock:
            self._exchange(self._require_child(), ("warm_up",))

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        with self._lock:
            child = self._require_child()
            reply = self._exchange(child, ("predict", self._pack(inputs), self._reply_room()))
            outputs = self._unpack(reply)
        self._timeouts = 0  # it answered: not hung
        return outputs

    def describe(self) -> Signature:
        if self.signature is None:
            raise RuntimeError("ProcessRuntime.load() was not called")
        return self.signature

    def note_timeout(self) -> None:
        """A request to this model passed its deadline; after
        ``policy.timeouts_to_kill`` in a row, the child is killed (and restarted)."""
        self._timeouts += 1
        if self._timeouts >= self.policy.timeouts_to_kill and self._up:
            self.kill(HANG)

    def kill(self, reason: str = CRASH) -> None:
        """End the current child at once (SIGKILL); the monitor restarts it."""
        child = self._child
        if child is None or not self._up:
            return
        self._killed_for, self._up = reason, False
        logger.warning(
            "killing the process of %s@%d (%s, pid %d)", self.model, self.version, reason, child.pid
        )
        child.kill()

    def close(self) -> None:
        """Stop the child in bounded time: asked to leave, then SIGTERM, then SIGKILL."""
        self._closing.set()
        self._up = False
        child = self._child
        if child is not None:
            if self._lock.acquire(timeout=self.policy.stop_grace_s):
                try:
                    child.conn.send(("close",))
                except (OSError, ValueError):
                    pass  # already gone
                finally:
                    self._lock.release()
                child.exit_code(self.policy.stop_grace_s)
            child.stop(self.policy.stop_grace_s)
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=3 * self.policy.stop_grace_s + 5)
        self._segments.close(unlink=True)

    # --- one child ---------------------------------------------------------------------

    def _start(self) -> None:
        """Start a child and wait until it has loaded and warmed up (or raise why not)."""
        started = time.monotonic()
        child = self._child = self._launch()
        if self._closing.is_set():
            child.stop(self.policy.stop_grace_s)
            raise RuntimeError("closed while starting")
        try:
            self._receive_ready(child)
            self._exchange(child, ("warm_up",))
        except BaseException:
            child.stop(self.policy.stop_grace_s)
            raise
        self._start_s = time.monotonic() - started
        self._up = True

    def _launch(self) -> Child:
        """A fresh interpreter running :func:`servewell.runtime.child.main` (spawned,
        not forked, and without re-running this process's ``__main__``, as
        multiprocessing's spawn would), handed its spec through the pipe."""
        sweep_orphaned_scratch()
        scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        ours, theirs = socket.socketpair()
        lifeline_reader, lifeline = os.pipe()
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        fds = (theirs.fileno(), lifeline_reader)
        # The last argument is for ps and /proc: which model the process runs.
        command = [sys.executable, "-c", CHILD_MAIN, *map(str, fds), f"{self.model}@{self.version}"]
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                pass_fds=fds,
                env=environment,
            )
        except BaseException:
            ours.close()
            os.close(lifeline)
            raise
        finally:  # the child has its own copies: ours would hide its end (no EOF)
            theirs.close()
            os.close(lifeline_reader)
        conn = Connection(ours.detach())
        child = Child(process, conn, lifeline, scratch)
        spec = ChildSpec(self.format, self.path, self.settings, self.signature, scratch, self.setup)
        with contextlib.suppress(OSError):  # it died at once: the ready message says so
            conn.send(spec)
        return child

    def _receive_ready(self, child: Child) -> None:
        try:
            reply = child.conn.recv()
        except (EOFError, OSError):
            how = describe_exit(child.exit_code())
            raise InvalidArtifact(
                f"the process of {self.model}@{self.version} ended while loading ({how})"
            ) from None
        if reply[0] == "error":
            raise error_from_wire(reply[1])
        _, self.platform, self.signature = reply

    def _require_child(self) -> Child:
        child = self._child
        if not self._up or child is None:
            raise self._unavailable()
        return child

    def _exchange(self, child: Child, message: tuple[Any, ...]) -> Any:
        try:
            child.conn.send(message)
            status, payload = child.conn.recv()
        except (EOFError, OSError):
            self._up = False
            how = describe_exit(child.exit_code())
            if self._killed_for == HANG:
                how = f"killed after {self.policy.timeouts_to_kill} deadlines in a row"
            raise ModelCrashed(self.model, self.version, how) from None
        if status == "error":
            raise error_from_wire(payload)
        return payload

    def _unavailable(self) -> ModelUnavailable:
        why = "its process is stopped" if self._closing.is_set() else "its process is restarting"
        wait_s = max(0.0, self._retry_at - time.monotonic()) + self._start_s
        return ModelUnavailable(self.model, self.version, why, retry_after_s=wait_s)

    # --- batches across ----------------------------------------------------------------

    def _pack(self, inputs: Mapping[str, Array]) -> Any:
        if shared_bytes(inputs) <= SHARED_ABOVE_BYTES:
            return dict(inputs)
        return place(inputs, self._segments.sized("request", room_for(inputs)))

    def _reply_room(self) -> tuple[str, int] | None:
        if self._reply_size == 0:
            return None
        segment = self._segments.sized("reply", self._reply_size)
        return segment.name, segment.size

    def _unpack(self, reply: Any) -> dict[str, Array]:
        if isinstance(reply, Placed):
            return take(reply, self._segments.sized("reply", self._reply_size))
        if shared_bytes(reply) > SHARED_ABOVE_BYTES:  # the next big answer: shared memory
            self._reply_size = max(self._reply_size, room_for(reply))
        return reply  # type: ignore[no-any-return]

    # --- the monitor -------------------------------------------------------------------

    def _watch(self) -> None:
        """Wait for the child to end; report it, wait the backoff, start a new one."""
        while not self._closing.is_set():
            child = self._child
            if child is None:
                return
            child.wait()
            if self._closing.is_set():
                return
            self._ended(child, self._killed_for or CRASH)
            self._restart()

    def _restart(self) -> None:
        """Start a new child once the backoff has passed, again until one starts."""
        while not self._closing.wait(max(0.0, self._retry_at - time.monotonic())):
            try:
                self._start()
            except Exception:
                if self._closing.is_set():
                    return
                logger.exception("cannot restart %s@%d", self.model, self.version)
                if self._child is not None:
                    self._ended(self._child, START_FAILED)
                continue
            logger.info("the process of %s@%d is back", self.model, self.version)
            return

    def _ended(self, child: Child, reason: str) -> None:
        """Mark the model down, release the dead child, log and report its end."""
        self._up = False
        with self._lock:  # a call on its way out sees its EOF first
            uptime_s = time.monotonic() - child.started_at
            exit_code = child.exit_code()
            child.release()
            self._killed_for, self._timeouts = None, 0
        stable = reason != START_FAILED and uptime_s >= self.policy.stable_after_s
        self._crashes = 1 if stable else self._crashes + 1
        delay_s = self.policy.delay_s(self._crashes)
        self._retry_at = time.monotonic() + delay_s
        event = ChildExit(self.model, self.version, child.pid, exit_code, reason, uptime_s, delay_s)
        logger.warning(event.fields()["message"], extra={"fields": event.fields()})
        if self.on_exit is not None:
            try:
                self.on_exit(event)
            except Exception:
                logger.exception("on_exit of %s@%d failed", self.model, self.version)
