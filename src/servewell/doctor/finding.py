"""What one check found: an item of the checklist, its status, what was seen and the
command or setting that fixes it; and the protocol every check follows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from servewell.doctor.context import Context


class Status(StrEnum):
    """``fail`` makes ``servewell doctor`` exit 7; ``warn`` is worth a look, not a stop."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    """One row of the checklist."""

    item: str
    status: Status
    found: str
    """What was seen, in a sentence."""
    fix: str = ""
    """The exact command or setting that fixes it ('' when nothing is to fix)."""
    model: str | None = None
    """The model it is about, for per-model items."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        return data


class Check(Protocol):
    """A family of the checklist: ``item`` names it, ``run`` looks and reports."""

    item: str

    def run(self, context: Context) -> list[Finding]: ...


def passed(item: str, found: str, model: str | None = None) -> Finding:
    return Finding(item, Status.PASS, found, "", model)


def warned(item: str, found: str, fix: str, model: str | None = None) -> Finding:
    return Finding(item, Status.WARN, found, fix, model)


def failed(item: str, found: str, fix: str, model: str | None = None) -> Finding:
    return Finding(item, Status.FAIL, found, fix, model)
