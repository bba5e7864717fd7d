"""The base of every settings section, and how a validation error of one reads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails


class Section(BaseModel):
    """A settings section: a key it has no field for is refused, never ignored (a
    misspelt setting would otherwise start the server as if nothing was said); a number
    must be finite (``cooldown_s: inf`` would pass ``gt=0`` and fail every request that
    meets the open breaker)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def error_message(error: ErrorDetails) -> str:
    """One pydantic error's message as its validator wrote it, without the prefix
    pydantic adds to a ``ValueError``'s or an ``assert``'s (nor the lines an assert's
    rewriting adds after it); the caller adds where it was."""
    message = str(error["msg"])
    if message.startswith("Assertion failed, "):
        return message.removeprefix("Assertion failed, ").partition("\n")[0]
    return message.removeprefix("Value error, ")
