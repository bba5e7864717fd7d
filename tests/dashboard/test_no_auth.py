"""With authentication off (``--no-auth``) the dashboard is open and read-only: every
page says so, shows no action, and refuses every action's POST."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard_browser import Visitor
from serving_models import serve_process


@pytest.fixture(scope="module")
def open_server(dashboard_keys: tuple[Path, dict[str, str]]) -> Iterator[str]:
    home, _ = dashboard_keys
    with serve_process(home, "--no-auth", "--models", "iris") as (url, _process):
        yield url


def test_the_dashboard_is_read_only_without_auth(browser: Any, open_server: str) -> None:
    context = browser.new_context()
    visitor = Visitor(context, open_server, "anonymous")
    visitor.expected_statuses.add(403)
    try:
        visitor.goto("/ui/sign-in")  # nothing to sign in with: straight to the pages
        assert visitor.page.url.endswith("/ui/models")
        visitor.goto("/ui/models/iris")
        banner = visitor.page.get_by_role("status").inner_text()
        assert banner.startswith("Authentication is off on this server")
        assert visitor.page.get_by_role("button").count() == 0
        visitor.screenshot("model-iris-no-auth")
        visitor.check_accessibility()
        url = open_server + "/ui/models/iris/aliases/production/rollback"
        assert visitor.page.request.post(url, form={}, max_redirects=0).status == 403
        assert visitor.page.request.get(open_server + "/ui/keys").status == 403
        visitor.check()
    finally:
        context.close()
