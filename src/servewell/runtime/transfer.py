"""Arrays and errors across the pipe between a server and a model's child process.

Messages are tuples pickled by :mod:`multiprocessing.connection`. Small batches travel
inside them. A batch whose numeric arrays hold more than :data:`SHARED_ABOVE_BYTES`
goes through shared memory instead: the array bytes are copied into a segment and the
message only names it (measured, ``bench/README.md``: a 25 MB batch and its answer
cross in ~15 ms this way against ~57 ms as out-of-band pickle-5 buffers and ~117 ms
pickled in the message; under ~64 KiB the three are alike).

Every segment is created, grown and unlinked by the server side alone, which names a
request segment and a reply segment in each request; the child attaches, copies its
inputs out, and writes outputs that fit into the reply segment (a larger answer goes in
the message, and the next request names a reply segment big enough). A child that dies
leaves nothing behind; a server killed outright leaves its segments to
multiprocessing's resource tracker, which unlinks them.
"""

from __future__ import annotations

import mmap
import os
import secrets
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from servewell import errors
from servewell.errors import ModelFailed, ServewellError
from servewell.runtime.base import Array

#: Above this many bytes of numeric arrays, a batch goes through shared memory.
SHARED_ABOVE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Placed:
    """Arrays laid out in a shared segment: (name, dtype, shape, offset) each."""

    segment: str
    arrays: tuple[tuple[str, str, tuple[int, ...], int], ...]
    inline: dict[str, Array]
    """The arrays that stay in the message (text, objects)."""


def shared_bytes(arrays: Mapping[str, Array]) -> int:
    """How many bytes of ``arrays`` could go through shared memory."""
    return sum(a.nbytes for a in arrays.values() if a.dtype.kind != "O")


def place(arrays: Mapping[str, Array], segment: shared_memory.SharedMemory | Attached) -> Placed:
    """Copy ``arrays``' numeric ones into ``segment`` (it must be big enough)."""
    laid_out, inline, offset = [], {}, 0
    for name, array in arrays.items():
        if array.dtype.kind == "O":
            inline[name] = array
            continue
        view = np.ndarray(array.shape, array.dtype, buffer=segment.buf, offset=offset)
        view[...] = array
        laid_out.append((name, array.dtype.str, tuple(array.shape), offset))
        offset += -(-array.nbytes // 64) * 64  # keep each array aligned
    return Placed(segment.name, tuple(laid_out), inline)


def take(placed: Placed, segment: shared_memory.SharedMemory | Attached) -> dict[str, Array]:
    """Copies of the arrays ``placed`` in ``segment`` (which the other side reuses)."""
    arrays = dict(placed.inline)
    for name, dtype, shape, offset in placed.arrays:
        view: Array = np.ndarray(shape, np.dtype(dtype), buffer=segment.buf, offset=offset)
        arrays[name] = view.copy()
    return arrays


def room_for(arrays: Mapping[str, Array]) -> int:
    """Bytes a segment needs to hold ``arrays`` with their alignment."""
    return sum(-(-a.nbytes // 64) * 64 for a in arrays.values() if a.dtype.kind != "O")


#: A segment is ``/dev/shm/servewell-shm-<server pid>-<random>``: the pid lets a later
#: server remove the segments of one that was killed with its whole process group
#: (``restart.sweep_orphaned_scratch``); nothing else would unlink them.
SEGMENT_PREFIX = "servewell-shm-"


class Segments:
    """The shared segments one side created (server) or attached to (child), by role."""

    def __init__(self) -> None:
        self._held: dict[str, shared_memory.SharedMemory | Attached] = {}

    def sized(self, role: str, size: int) -> shared_memory.SharedMemory:
        """This side's segment for ``role``, re-created larger when it cannot hold
        ``size`` bytes (the server's side)."""
        segment = self._held.get(role)
        if not isinstance(segment, shared_memory.SharedMemory) or segment.size < size:
            self._drop(role, unlink=True)
            capacity = 1 << max(size - 1, SHARED_ABOVE_BYTES).bit_length()
            name = f"{SEGMENT_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
            segment = shared_memory.SharedMemory(name, create=True, size=capacity)
            self._held[role] = segment
        return segment

    def attached(self, role: str, name: str) -> Attached:
        """The segment called ``name``, attached once (the child's side)."""
        segment = self._held.get(role)
        if not isinstance(segment, Attached) or segment.name != name:
            self._drop(role, unlink=False)
            segment = self._held[role] = Attached(name)
        return segment

    def close(self, *, unlink: bool) -> None:
        for role in list(self._held):
            self._drop(role, unlink=unlink)

    def _drop(self, role: str, *, unlink: bool) -> None:
        segment = self._held.pop(role, None)
        if segment is None:
            return
        segment.close()
        if unlink and isinstance(segment, shared_memory.SharedMemory):
            segment.unlink()


class Attached:
    """Another process's POSIX shared memory segment, mapped here.

    Not :class:`multiprocessing.shared_memory.SharedMemory`: attaching one of those
    registers it with a resource tracker (Python < 3.13), which would start a tracker
    process in the child and unlink the server's segment when the child exits. Linux
    keeps POSIX segments as files in ``/dev/shm``."""

    def __init__(self, name: str) -> None:
        self.name = name
        with open(f"/dev/shm/{name.lstrip('/')}", "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 0)
        self.size = len(self._map)
        self.buf = memoryview(self._map)

    def close(self) -> None:
        self.buf.release()
        self._map.close()


class ChildTraceback(Exception):
    """Where an error raised in the child came from: its traceback, as text (the
    ``__cause__`` of the error the server raises, so the server's log shows it)."""


def error_to_wire(exc: BaseException) -> tuple[str, str, dict[str, Any], str]:
    """What crosses the pipe for an error: a servewell error keeps its class and state;
    anything else is the model failing (:class:`ModelFailed`), named by its type."""
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, ServewellError) and getattr(errors, type(exc).__name__, None) is type(exc):
        state = {k: v for k, v in vars(exc).items() if _is_plain(v)}
        return type(exc).__name__, exc.message, state, text
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return "ModelFailed", f"the model raised {message}", {}, text


def error_from_wire(wire: tuple[str, str, dict[str, Any], str]) -> ServewellError:
    """The error :func:`error_to_wire` described, with the child's traceback as cause."""
    name, message, state, text = wire
    cls = getattr(errors, name, ModelFailed)
    exc: ServewellError = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.message, exc.detail = message, {}
    vars(exc).update(state)
    exc.__cause__ = ChildTraceback(text)
    return exc


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | dict | list | tuple)
