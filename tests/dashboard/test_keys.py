"""The Keys page: a key created in the browser works on the API at once, its secret is
shown once, and once revoked it stops working (and its dashboard session ends)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

ROW = [[5.1, 3.5, 1.4, 0.2]]


def predict(url: str, key: str) -> int:
    answer = httpx.post(
        f"{url}/v1/models/iris:predict",
        json={"instances": ROW},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    return answer.status_code


def wait_for_status(url: str, key: str, status: int, timeout_s: float = 20) -> int:
    """The status of a prediction with ``key`` once it is ``status`` (or at the deadline)."""
    deadline = time.monotonic() + timeout_s
    while (found := predict(url, key)) != status and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def create_in_ui(visitor: Any, name: str, scopes: tuple[str, ...]) -> str:
    visitor.goto("/ui/keys")
    visitor.page.get_by_label("Name (who or what uses it)").fill(name)
    for box in visitor.page.locator("input[name=scopes]").all():
        box.set_checked(box.get_attribute("value") in scopes)
    visitor.page.get_by_role("button", name="Create key").click()
    visitor.page.wait_for_load_state("networkidle")
    secret: str = visitor.page.locator("#new-secret").inner_text().strip()
    return secret


def test_a_key_created_in_the_ui_works_until_revoked(
    visit: Any, keys: dict[str, str], server: str
) -> None:
    visitor = visit()
    visitor.sign_in(keys["admin"])
    secret = create_in_ui(visitor, "from-the-ui", ("predict",))
    assert re.fullmatch(r"sw_[a-z2-7]{12}_[A-Za-z0-9_-]{43}", secret)
    visitor.screenshot("keys-created")
    assert wait_for_status(server, secret, 200) == 200
    visitor.goto("/ui/keys")  # shown once: never again
    assert secret not in visitor.page.content()
    assert secret.split("_", 2)[2] not in visitor.page.content()
    row = visitor.page.get_by_role("row").filter(has_text="from-the-ui")
    row.get_by_role("button", name="Revoke from-the-ui").click()
    visitor.page.wait_for_url(re.compile(r".*revoked=from-the-ui$"))
    assert "revoked" in row.inner_text()
    assert wait_for_status(server, secret, 401) == 401


def test_a_revoked_key_signs_its_dashboard_sessions_out(visit: Any, keys: dict[str, str]) -> None:
    admin = visit("admin")
    admin.sign_in(keys["admin"])
    secret = create_in_ui(admin, "short-lived-viewer", ("viewer",))
    viewer = visit("viewer")
    viewer.sign_in(secret)
    admin.goto("/ui/keys")
    row = admin.page.get_by_role("row").filter(has_text="short-lived-viewer")
    row.get_by_role("button", name="Revoke short-lived-viewer").click()
    admin.page.wait_for_url(re.compile(r".*revoked=short-lived-viewer$"))
    deadline = time.monotonic() + 20
    while "/ui/sign-in" not in viewer.page.url and time.monotonic() < deadline:
        viewer.goto("/ui/models")
        time.sleep(0.2)
    assert "/ui/sign-in" in viewer.page.url
    assert "its key was revoked" in viewer.page.get_by_role("alert").inner_text()
    assert viewer.context.cookies() == []


def test_a_refused_key_form_says_why_and_creates_nothing(visit: Any, keys: dict[str, str]) -> None:
    visitor = visit()
    visitor.expected_statuses.add(400)
    visitor.sign_in(keys["admin"])
    visitor.goto("/ui/keys")
    visitor.page.get_by_label("Name (who or what uses it)").fill("bad-rate")
    visitor.page.get_by_label("Rate (e.g. 100/minute; empty: the configured default)").fill("lots")
    visitor.page.get_by_role("button", name="Create key").click()
    visitor.page.wait_for_load_state("networkidle")
    assert visitor.page.get_by_role("alert").is_visible()
    assert visitor.page.locator("#new-secret").count() == 0
    assert visitor.page.get_by_role("row").filter(has_text="bad-rate").count() == 0


def test_a_key_created_in_the_ui_carries_its_llm_budget_and_token_rate(
    visit: Any, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.expected_statuses.add(400)
    visitor.sign_in(keys["admin"])
    visitor.goto("/ui/keys")
    form = visitor.page
    form.get_by_label("Name (who or what uses it)").fill("llm-app")
    form.get_by_label("LLM budget, USD (e.g. 10/day or 250/month; empty: none)").fill("lots")
    form.get_by_role("button", name="Create key").click()
    form.wait_for_load_state("networkidle")
    assert form.get_by_role("alert").is_visible()
    assert form.get_by_role("row").filter(has_text="llm-app").count() == 0

    form.get_by_label("Name (who or what uses it)").fill("llm-app")
    form.get_by_label("LLM budget, USD (e.g. 10/day or 250/month; empty: none)").fill("10/day")
    form.get_by_label("LLM tokens per minute (empty: no limit)").fill("20000")
    form.get_by_role("button", name="Create key").click()
    form.wait_for_load_state("networkidle")
    assert form.locator("#new-secret").count() == 1
    row = form.get_by_role("row").filter(has_text="llm-app")
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert cells[5:7] == ["10/day", "20,000"]  # read back from the registry
