"""Every page of the Models and Keys parts loads in a real browser with no console
error and no failed request, passes axe-core, and is saved as a screenshot."""

from __future__ import annotations

from typing import Any

import pytest

#: (screenshot name, path, text the page must show).
PAGES = [
    ("models", "/ui/models", "iris@1"),
    ("model-iris", "/ui/models/iris", "Roll back production to v1"),
    ("model-adder", "/ui/models/adder", "No traffic policy"),
    ("keys", "/ui/keys", "Create a key"),
]


@pytest.mark.parametrize(("name", "path", "shows"), PAGES, ids=[page[0] for page in PAGES])
def test_page_loads_clean_and_accessible(
    visit: Any, keys: dict[str, str], name: str, path: str, shows: str
) -> None:
    visitor = visit()
    visitor.sign_in(keys["admin"])
    response = visitor.goto(path)
    assert response.status == 200
    assert shows in visitor.page.content()
    visitor.screenshot(name)
    visitor.check_accessibility()
    visitor.check()


def test_sign_in_page_is_accessible(visit: Any) -> None:
    visitor = visit()
    visitor.goto("/ui/sign-in")
    visitor.screenshot("sign-in")
    visitor.check_accessibility()


def test_the_stored_training_report_opens_sandboxed(visit: Any, keys: dict[str, str]) -> None:
    visitor = visit()
    visitor.sign_in(keys["admin"])
    visitor.goto("/ui/models/iris")
    with visitor.page.expect_navigation():
        visitor.page.get_by_role("link", name="report.html").click()
    assert visitor.page.locator("h1").inner_text() == "Training report"
    assert (
        "sandbox"
        in visitor.goto("/ui/models/iris/versions/2/files/report.html").headers[
            "content-security-policy"
        ]
    )
