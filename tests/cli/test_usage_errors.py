"""A usage error (an unknown command or option, a missing or bad value) is one line on
stderr naming it and where to read more, exit 2, like every other failure of the CLI;
no arguments still shows the help."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "--port", "abc"], "error: Invalid value for '--port'"),
        (["nope"], "error: No such command 'nope'"),
        (["models", "list", "--bogus"], "error: No such option: --bogus"),
        (["register"], "error: Missing argument 'path' (see 'servewell register --help')"),
        (["alias", "set", "fraud"], "error: Missing argument"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(invoke: Invoke, args: list[str], says: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(says), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_no_arguments_still_shows_the_help(invoke: Invoke) -> None:
    result = invoke()
    assert "Usage" in result.output
    assert "register" in result.output
