"""A user's text table file (CSV), looked at before it is read and read line by line.

A file given on the command line can be anything: a sparse gigabyte of NUL bytes, a
binary, one endless line. :func:`sniff_text_table` looks at its first bytes only and
refuses what is plainly not a text table at once; :func:`bounded_lines` yields its lines
without ever holding more than one bounded line, so reading it takes bounded memory
whatever its size. Refusals are :class:`~servewell.errors.InvalidData` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from servewell.errors import InvalidData

#: How much of a file is looked at before it is read.
SNIFF_BYTES = 64 * 1024
#: The longest line read (in characters): a table's row is far shorter.
MAX_LINE_CHARS = 1024 * 1024


def sniff_text_table(path: Path) -> None:
    """Refuse at once a file whose first bytes are not text lines: NUL bytes (a binary,
    or a sparse file), or no line break in the first :data:`SNIFF_BYTES`."""
    try:
        with path.open("rb") as file:
            head = file.read(SNIFF_BYTES)
    except OSError as exc:
        raise InvalidData(f"cannot read {path}: {exc.strerror}") from None
    if b"\x00" in head:
        raise InvalidData(f"{path.name} is not a CSV file (it holds binary data)")
    if len(head) == SNIFF_BYTES and b"\n" not in head and b"\r" not in head:
        raise InvalidData(
            f"{path.name} is not a CSV file: no line break in its first {SNIFF_BYTES} bytes"
        )


def bounded_lines(file: IO[str], path: Path) -> Iterator[str]:
    """``file``'s lines, refusing one longer than :data:`MAX_LINE_CHARS` before more of
    it is read."""
    number = 0
    while line := file.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise InvalidData(
                f"{path.name}: line {number} is longer than {MAX_LINE_CHARS} characters"
            )
        yield line
