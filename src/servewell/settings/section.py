"""The base of every settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: a key it has no field for is refused, never ignored (a
    misspelt setting would otherwise start the server as if nothing was said); a number
    must be finite (``cooldown_s: inf`` would pass ``gt=0`` and fail every request that
    meets the open breaker)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
