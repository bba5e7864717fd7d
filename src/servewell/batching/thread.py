"""One daemon thread that runs a queue's handler calls, one at a time, off the event loop.

Not a ``ThreadPoolExecutor``: the interpreter joins an executor's threads at exit, and
``shutdown(wait=True)`` waits for them, so one model call that never returns would keep
the whole process from stopping. A model call cannot be interrupted from outside (Python
has no way to stop a thread); this thread is a daemon, so a hung call holds only the
thread, and the process exits without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
A = TypeVar("A")

_Job = tuple[Callable[[Any], Any], Any, "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class ModelThread:
    """Runs ``fn(arg)`` calls in order on its own daemon thread (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running = False

    @property
    def is_busy(self) -> bool:
        """Whether a call is running now (one that hangs stays busy for ever)."""
        return self._running

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[A], T], arg: A) -> asyncio.Future[T]:
        """A future for ``fn(arg)``, run on the thread after the calls handed over before."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, arg, future, loop))
        return future

    def stop(self, timeout_s: float) -> bool:
        """Let the thread end after the calls handed over; wait at most ``timeout_s``
        for it; whether it ended (if not, it is left running: a daemon, it does not hold
        the process)."""
        self._jobs.put(None)
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._running = True
            try:
                _run_one(*job)
            finally:
                self._running = False
            del job  # hold no request's data while waiting for the next


def _run_one(
    fn: Callable[[Any], Any],
    arg: Any,
    future: asyncio.Future[Any],
    loop: asyncio.AbstractEventLoop,
) -> None:
    try:
        result = fn(arg)
    except Exception as exc:  # the caller's to judge, as an executor passes it on
        _hand_back(loop, _fail, future, exc)
    except BaseException as exc:  # SystemExit from a model's code ends no thread of ours
        failed = RuntimeError(f"{fn!r} raised {exc!r}")
        failed.__cause__ = exc
        _hand_back(loop, _fail, future, failed)
    else:
        _hand_back(loop, _resolve, future, result)


def _hand_back(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    # A call that outlived its server (hung, then returned after shutdown) has no loop
    # left to tell: nobody is waiting for it any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, future, value)


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
