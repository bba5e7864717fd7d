"""The base of every settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: a key it has no field for is refused, never ignored (a
    misspelt setting would otherwise start the server as if nothing was said)."""

    model_config = ConfigDict(extra="forbid")
