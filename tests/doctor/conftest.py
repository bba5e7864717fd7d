"""A registry with one production model, and the doctor's context over it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from doctor_context import MakeContext
from servewell.bootstrap import Services
from servewell.doctor.context import Context, build_context
from servewell.doctor.live import LiveServer
from servewell.settings import Settings
from serving_models import register_python


@pytest.fixture
def fraud(sqlite_services: Services) -> Services:
    """``fraud`` v1 (a Python model, registered from a file), aliased production."""
    register_python(sqlite_services, "fraud", "sum", signature="sum.json")
    sqlite_services.registry.set_alias("fraud", "production", 1)
    return sqlite_services


@pytest.fixture
def make_context(fraud: Services) -> MakeContext:
    """The doctor's context over ``fraud``'s registry with these settings (and server)."""

    def make(live: LiveServer | None = None, **settings: Any) -> Context:
        changed = Settings(home=fraud.settings.home, **settings)
        return build_context(replace(fraud, settings=changed), live)

    return make
