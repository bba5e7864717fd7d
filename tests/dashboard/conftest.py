"""The dashboard's browser tests: a real ``servewell serve`` on a loopback port over a
real registry (``dashboard_home``), driven by Playwright through Debian's chromium
(``/usr/bin/chromium``; never a downloaded browser: the tests skip, saying why, without
it). Each :class:`Visitor` collects the console errors, page errors and failed requests
of its pages: :meth:`Visitor.check` fails the test on any."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dashboard_home import build_dashboard_home
from serving_models import serve_process

CHROMIUM = Path(os.environ.get("SERVEWELL_CHROMIUM", "/usr/bin/chromium"))
#: Screenshots of every page visited, kept as the run's artifacts (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
#: axe-core impacts that fail a page.
BLOCKING_IMPACTS = ("serious", "critical")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch arguments: Debian's chromium, headless."""
    pytest.importorskip("playwright", reason="the dev extra's playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium")
    return {"executable_path": str(CHROMIUM), "headless": True, "args": ["--no-sandbox"]}


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
def keys(dashboard_keys: tuple[Path, dict[str, str]]) -> dict[str, str]:
    """API keys' secrets by name: ``admin``, ``viewer``, ``caller`` (predict only)."""
    return dashboard_keys[1]


class Visitor:
    """A browser context on the dashboard, recording what went wrong on its pages."""

    def __init__(self, context: Any, url: str, name: str) -> None:
        self.context = context
        self.url = url
        self.name = name
        self.problems: list[str] = []
        self.expected_statuses: set[int] = set()
        """Statuses a test provokes on purpose (not counted as failed requests)."""
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)
        self.page.on("dialog", lambda dialog: dialog.accept())  # data-confirm buttons

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error on {self.page.url}: {message.text}")

    def _failed(self, request: Any) -> None:
        if request.failure == "net::ERR_ABORTED":
            return  # cut short by the page navigating on (a form's redirect), not failed
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def goto(self, path: str) -> Any:
        """Open ``/ui...`` and wait for it to settle; the response."""
        return self.page.goto(self.url + path, wait_until="networkidle")

    def sign_in(self, key: str) -> None:
        self.goto("/ui/sign-in")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r".*/ui/models$"))

    def check(self) -> None:
        """Fail on any console error, page error or failed request so far."""
        assert not self.problems, "\n".join(self.problems)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check_accessibility(self) -> None:
        """axe-core on the page: no serious or critical violation."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        blocking = [
            f"{violation['id']} ({violation['impact']}): {violation['help']} - "
            + "; ".join(node["target"][0] for node in violation["nodes"][:3])
            for violation in results.response["violations"]
            if violation["impact"] in BLOCKING_IMPACTS
        ]
        assert not blocking, f"{self.page.url}:\n" + "\n".join(blocking)


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
