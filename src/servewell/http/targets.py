"""Which model an inference path names: ``/v2/models/{m}[/versions/{v}]/infer`` (V2) or
``/v1/models/{m}[/versions/{v}]:predict`` (REST)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from servewell.core.ref import MAX_VERSION, parse_version
from servewell.errors import NotFound


@dataclass(frozen=True, slots=True)
class InferTarget:
    """What an inference path names."""

    protocol: str
    """``v2`` or ``rest``."""
    model: str
    version: str | None


@functools.lru_cache(maxsize=1024)  # a server sees few distinct paths; targets are immutable
def match_infer(path: str) -> InferTarget | None:
    """The target of ``/v2/models/{m}[/versions/{v}]/infer`` or
    ``/v1/models/{m}[/versions/{v}]:predict``; None for any other path."""
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        protocol, middle = "v2", path[len("/v2/models/") : -len("/infer")]
    elif path.startswith("/v1/models/") and path.endswith(":predict"):
        protocol, middle = "rest", path[len("/v1/models/") : -len(":predict")]
    else:
        return None
    name, sep, version = middle.partition("/versions/")
    if not name or "/" in name or (sep and (not version or "/" in version)):
        return None
    return InferTarget(protocol, name, version if sep else None)


def version_number(target: InferTarget) -> int | None:
    if target.version is None:
        return None
    number = parse_version(target.version)
    if number is None:
        raise NotFound(
            f"model '{target.model}' has no version '{target.version}'; "
            f"versions are numbers from 1 to {MAX_VERSION}",
            model=target.model,
        )
    return number
