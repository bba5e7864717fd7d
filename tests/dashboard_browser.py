"""A browser visitor of the dashboard for the tests in ``tests/dashboard``: its pages'
console errors, page errors and failed requests are collected, and :meth:`Visitor.check`
fails the test on any; screenshots go to ``test-artifacts/dashboard`` (gitignored);
axe-core checks each page's accessibility."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Screenshots of every page visited, kept as the run's artifacts (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
#: axe-core impacts that fail a page.
BLOCKING_IMPACTS = ("serious", "critical")


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
        status = re.search(r"responded with a status of (\d+)", message.text)
        if status is not None and int(status[1]) in self.expected_statuses:
            return  # the response, provoked on purpose, that chromium logs as well
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
