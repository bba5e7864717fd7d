"""Every page of the Models and Keys parts loads in a real browser with no console
error and no failed request, passes axe-core, and is saved as a screenshot."""

from __future__ import annotations

from typing import Any

import pytest

#: (screenshot name, path, text the page must show).
PAGES = [
    ("models", "/ui/models", "iris@1"),
    ("model-iris", "/ui/models/iris", "Roll back production to v1"),
    ("model-iris-traffic", "/ui/models/iris", "<td>production</td><td>v2</td>"),
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


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/ui/models/ghost", 404, "model 'ghost' is not registered"),
        ("/ui/models/iris/versions/9/files/report.html", 404, "iris"),
        ("/ui/models/iris/versions/2/files/original", 404, "has no document 'original'"),
        ("/ui/models/iris/versions/two/files/report.html", 404, "has no version 'two'"),
        ("/ui/nowhere", 404, "no dashboard page at /ui/nowhere"),
    ],
)
def test_a_bad_address_is_a_page_saying_what_is_wrong(
    visit: Any, keys: dict[str, str], path: str, status: int, says: str
) -> None:
    visitor = visit()
    visitor.expected_statuses.add(status)
    visitor.sign_in(keys["viewer"])
    response = visitor.goto(path)
    assert response.status == status
    assert says in visitor.page.get_by_role("alert").inner_text()


def test_the_keyboard_can_skip_to_the_content(visit: Any, keys: dict[str, str]) -> None:
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.goto("/ui/models")
    visitor.page.keyboard.press("Tab")
    assert visitor.page.evaluate("document.activeElement.textContent") == "Skip to content"
    visitor.page.keyboard.press("Enter")
    assert visitor.page.evaluate("document.activeElement.id") == "main"
    visitor.page.keyboard.press("Tab")  # then on into the page's own links
    assert visitor.page.evaluate("document.activeElement.textContent") == "adder"


def test_a_laptop_screen_needs_no_sideways_scroll(visit: Any, keys: dict[str, str]) -> None:
    visitor = visit()
    visitor.page.set_viewport_size({"width": 1024, "height": 700})
    visitor.sign_in(keys["admin"])
    for name, path in (("models-1024", "/ui/models"), ("model-iris-1024", "/ui/models/iris")):
        visitor.goto(path)
        visitor.screenshot(name)
        overflow = visitor.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than the screen"
