"""How every command speaks: Rich for people, JSON for scripts, one line for errors."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from servewell.errors import ServewellError

if TYPE_CHECKING:
    from servewell.bootstrap import Services

#: Off a terminal (a CI log, a pipe, a file) Rich fits everything to 80 columns: a
#: table's figures were cut short ("5,109…") and fixes broken mid-word. There a line may
#: be this wide instead (``COLUMNS`` still decides when set).
WIDTH_OFF_A_TERMINAL = 200


def _width() -> int | None:
    """None (Rich asks the terminal, or ``COLUMNS``) on a terminal or with ``COLUMNS``."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return WIDTH_OFF_A_TERMINAL


console = Console(width=_width())
errors = Console(stderr=True)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn servewell's errors into one line on stderr and a non-zero exit code."""
    try:
        yield
    except ServewellError as exc:
        print_error(exc.message)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        errors.print("interrupted")
        raise typer.Exit(130) from None


def print_error(message: str) -> None:
    """A failure's one line on stderr: ``error: <message>``."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def open_services() -> Iterator[Services]:
    """Settings from the environment and servewell.yaml, then the registry, for one command."""
    from servewell.bootstrap import build_services
    from servewell.settings import load_settings

    with reporting_errors():
        services = build_services(load_settings())
        try:
            yield services
        finally:
            services.close()


def who_am_i() -> str:
    """Who a change made from this command line is recorded as: ``user:<login name>``."""
    import getpass
    import os

    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"user:uid-{os.getuid()}"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
