"""A server process that cannot start says why, once, and is not started again.

Start-up is building the app (the factory uvicorn calls) and the lifespan's start-up
(opening the registry, starting the protection, and with ``load_before_serving`` loading
every model). A failure there is logged as one line, ``the server failed to start:
<reason>``, and the process exits with :data:`STARTUP_FAILURE`: uvicorn's supervisor
then stops instead of starting another ``--workers N`` worker that would fail the same
way (a worker that dies of anything else is restarted). The reason is also appended to
the file named by :data:`REPORT_VARIABLE`, which ``servewell serve`` creates for its
workers (they inherit its environment) and reads when uvicorn returns, to exit with
:class:`StartupFailed`'s code 9 and the reason instead of uvicorn's bare status.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from servewell.errors import ServewellError, StartupFailed

logger = logging.getLogger(__name__)

#: The process status uvicorn gives a server that failed before serving (its
#: ``uvicorn.config.STARTUP_FAILURE``), on which its supervisor stops the parent.
STARTUP_FAILURE = 3
#: The file the reasons go to, one line each (not a setting: ``servewell serve`` sets it).
REPORT_VARIABLE = "SERVEWELL_STARTUP_REPORT"


def record_startup_failure(exc: BaseException) -> StartupFailed:
    """Log why start-up failed (one line; the traceback too when the error is not one of
    servewell's own, which say what is wrong) and append the reason to the report, if
    this process has one; returns the failure as a StartupFailed."""
    failure = exc if isinstance(exc, StartupFailed) else StartupFailed(_reason(exc))
    logger.error("%s", failure.message, exc_info=None if isinstance(exc, ServewellError) else exc)
    report = os.environ.get(REPORT_VARIABLE)
    if report:
        with open(report, "a", encoding="utf-8") as writer:
            writer.write(" ".join(failure.reason.split()) + "\n")
    return failure


@contextmanager
def exiting_on_startup_failure() -> Iterator[None]:
    """Around an app factory: uvicorn lets the factory's exceptions escape, and its
    supervisor restarts a worker that died that way, for ever."""
    try:
        yield
    except Exception as exc:
        record_startup_failure(exc)
        raise SystemExit(STARTUP_FAILURE) from None


@contextmanager
def reporting_startup_failure() -> Iterator[None]:
    """Around a server's run: raise StartupFailed with the first reason it or one of its
    workers recorded, in place of the status uvicorn exits or returns with."""
    descriptor, name = tempfile.mkstemp(prefix="servewell-startup-", suffix=".txt")
    os.close(descriptor)
    report = Path(name)
    os.environ[REPORT_VARIABLE] = name
    try:
        try:
            yield
        except SystemExit:
            if not _first_reason(report):
                raise
        reason = _first_reason(report)
        if reason:
            raise StartupFailed(reason)
    finally:
        os.environ.pop(REPORT_VARIABLE, None)
        report.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ServewellError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _first_reason(report: Path) -> str:
    lines = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    return lines[0] if lines else ""
