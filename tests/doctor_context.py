"""The doctor's context over a real registry holding one production model, for the
doctor's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from servewell.bootstrap import Services
from servewell.doctor.context import Context
from servewell.registry import Artifact

MakeContext = Callable[..., Context]


def attach(services: Services, role: str, data: bytes = b"{}") -> None:
    """Keep ``data`` as ``fraud`` v1's ``role`` attachment."""
    stored, _ = services.artifacts.put_bytes(data)
    services.registry.attach("fraud", 1, Artifact.of(role, "json", stored))


def statuses(findings: list[Any], item: str | None = None) -> list[str]:
    return [str(f.status) for f in findings if item is None or f.item == item]
