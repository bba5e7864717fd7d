"""The dashboard's browser tests: a real ``servewell serve`` on a loopback port over a
real registry (``dashboard_home``), driven by Playwright through Debian's chromium
(``/usr/bin/chromium``; never a downloaded browser: the tests skip, saying why, without
it). Each visitor (``dashboard_browser.Visitor``) collects the console errors, page
errors and failed requests of its pages, and fails the test on any."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dashboard_browser import Visitor
from dashboard_home import build_dashboard_home
from serving_models import serve_process

CHROMIUM = Path(os.environ.get("SERVEWELL_CHROMIUM", "/usr/bin/chromium"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, for one test module. Playwright's sync API runs an
    event loop of its own on this thread while it is started, and ``asyncio.run``
    refuses to run beside it: started for the whole session (as pytest-playwright's
    fixtures are), it broke every later test that calls ``asyncio.run``."""
    pytest.importorskip("playwright", reason="the dev extra's playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def dashboard_keys(
    tmp_path_factory: pytest.TempPathFactory, classifier: Any, iris: tuple[np.ndarray, Any]
) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    return home, build_dashboard_home(home, classifier, iris[0])


@pytest.fixture(scope="module")
def server(dashboard_keys: tuple[Path, dict[str, str]]) -> Iterator[str]:
    """The server's URL: iris (production -> v2) and the adder, keys required."""
    home, _ = dashboard_keys
    with serve_process(home, "--models", "iris,adder") as (url, _process):
        yield url


@pytest.fixture(scope="module")
def home(dashboard_keys: tuple[Path, dict[str, str]]) -> Path:
    """The server's SERVEWELL_HOME (read its registry to check what an action did)."""
    return dashboard_keys[0]


@pytest.fixture(scope="module")
def keys(dashboard_keys: tuple[Path, dict[str, str]]) -> dict[str, str]:
    """API keys' secrets by name: ``admin``, ``viewer``, ``caller`` (predict only)."""
    return dashboard_keys[1]


@pytest.fixture
def visit(browser: Any, server: str) -> Iterator[Any]:
    """``visit(name)``: a new :class:`Visitor` (its own cookies) on the server; each is
    checked for problems when the test ends."""
    visitors: list[Visitor] = []

    def new(name: str = "visitor") -> Visitor:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        visitor = Visitor(context, server, name)
        visitors.append(visitor)
        return visitor

    yield new
    for visitor in visitors:
        visitor.context.close()
    for visitor in visitors:
        visitor.check()
