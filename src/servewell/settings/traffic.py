"""Traffic policies declared in the settings (``traffic: {<model>: ...}`` in
``servewell.yaml``), beside the ones ``servewell traffic`` stores in the registry.

Only the shape and the limits of the values are checked here (a weight is a whole
percentage, a shadow's percent is 0-100, ``source`` is ``registry`` or ``file``);
whether the weights add up to 100, the targets are spelled as versions or aliases and
exist is checked when the policies are read (``serving/traffic.declared_policies``):
when a server starts, and by ``servewell traffic``. Which policy a server follows is
``core/traffic.active_policies``': the registry's, unless ``source: file``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from servewell.settings.section import Section

Weight = Annotated[int, Field(ge=1, le=100)]


class DeclaredShadow(Section):
    """Copies of ``percent`` % of the model's requests to ``version``."""

    version: str
    """A version number (``3``) or an alias (``canary``)."""
    percent: float = Field(ge=0, le=100)

    @field_validator("version", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class DeclaredTraffic(Section):
    """One model's traffic policy as the settings declare it."""

    split: dict[str, Weight] = Field(default_factory=dict)
    """Target (version number or alias) -> weight, whole percentages adding up to 100,
    e.g. ``{"2": 90, "3": 10}``; empty: no split."""
    sticky_header: str | None = None
    """The header naming the user (default ``X-User-ID``)."""
    experiment: str | None = None
    """The experiment id (default: derived from the model and the arms' targets, as
    ``servewell traffic split`` derives it)."""
    shadow: DeclaredShadow | None = None
    source: Literal["registry", "file"] = "registry"
    """``registry``: a policy set with ``servewell traffic`` wins over this one (which
    applies while the registry holds none); ``file``: this one applies whatever the
    registry holds, and ``servewell traffic split|shadow|clear`` refuse to change it."""

    @field_validator("split", mode="before")
    @classmethod
    def _targets_as_text(cls, value: Any) -> Any:
        """YAML reads ``2: 90`` with a number as the key: the target is its text."""
        if not isinstance(value, dict):
            return value
        split: dict[str, Any] = {}
        for target, weight in value.items():
            text = str(target)
            if text in split:
                raise ValueError(f"arm {text!r} is named twice")
            split[text] = weight
        return split

    @property
    def owned_by_file(self) -> bool:
        return self.source == "file"
