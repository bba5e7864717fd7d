"""Who may see and do what in the dashboard, in a real browser against a real server:
sign-in and its cookie, sign-out, a viewer's read-only pages, and every refused POST."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from servewell.bootstrap import build_services
from servewell.settings import Settings

ROLLBACK = "/ui/models/iris/aliases/production/rollback"


def production_of(home: Path) -> int:
    """Where iris's ``production`` alias points, read from the registry itself."""
    services = build_services(Settings(home=home))
    try:
        return services.registry.list_models()[-1].aliases["production"]
    finally:
        services.close()


def on_iris_page(visit: Any, key: str) -> Any:
    """A new visitor signed in with ``key``, on iris's page."""
    visitor = visit()
    visitor.sign_in(key)
    visitor.goto("/ui/models/iris")
    return visitor


def csrf_of(visitor: Any) -> str:
    token: str = visitor.page.locator("input[name=csrf_token]").first.get_attribute("value")
    return token


def test_an_unauthenticated_visitor_is_sent_to_sign_in_and_back(
    visit: Any, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.goto("/ui/models/iris")
    assert "/ui/sign-in" in visitor.page.url
    assert visitor.page.get_by_role("alert").inner_text().startswith("sign in with an API key")
    visitor.page.get_by_label("API key").fill(keys["viewer"])
    visitor.page.get_by_role("button", name="Sign in").click()
    visitor.page.wait_for_url(re.compile(r".*/ui/models/iris$"))
    assert visitor.page.get_by_role("heading", name="iris", exact=True).is_visible()


def test_the_session_cookie_is_http_only_and_same_site_strict(
    visit: Any, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    (cookie,) = visitor.context.cookies()
    assert cookie["name"] == "servewell_session"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert cookie["secure"] is False  # plain HTTP here; Secure when the request came over TLS
    assert keys["viewer"] not in cookie["value"]
    assert keys["viewer"].split("_", 2)[2] not in visitor.page.content()


def test_a_wrong_key_or_one_without_viewer_is_refused_at_sign_in(
    visit: Any, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.expected_statuses.update({401, 403})
    visitor.goto("/ui/sign-in")
    visitor.page.get_by_label("API key").fill(keys["viewer"][:-2] + "xx")
    visitor.page.get_by_role("button", name="Sign in").click()
    assert visitor.page.get_by_role("alert").inner_text() == "the API key is not valid"
    visitor.page.get_by_label("API key").fill(keys["caller"])
    visitor.page.get_by_role("button", name="Sign in").click()
    alert = visitor.page.get_by_role("alert").inner_text()
    assert alert == "the API key 'caller' lacks the 'viewer' scope"
    assert visitor.context.cookies() == []


def test_signing_out_ends_the_session(visit: Any, keys: dict[str, str]) -> None:
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.page.get_by_role("button", name="Sign out").click()
    visitor.page.wait_for_url(re.compile(r".*/ui/sign-in.*"))
    assert visitor.context.cookies() == []
    visitor.goto("/ui/models")
    assert "/ui/sign-in" in visitor.page.url


def test_a_viewer_sees_no_action_and_its_post_is_refused(
    visit: Any, keys: dict[str, str], home: Path
) -> None:
    visitor = on_iris_page(visit, keys["viewer"])
    assert visitor.page.get_by_role("button", name=re.compile("Roll back")).count() == 0
    assert visitor.page.get_by_role("link", name="Keys").count() == 0
    assert "(read-only)" in visitor.page.locator("header").inner_text()
    refused = visitor.page.request.post(
        visitor.url + ROLLBACK, form={"csrf_token": csrf_of(visitor)}, max_redirects=0
    )
    assert refused.status == 403
    assert "read-only for &#39;viewer&#39;" in refused.text()
    assert production_of(home) == 2
    keys_page = visitor.page.request.get(visitor.url + "/ui/keys", max_redirects=0)
    assert keys_page.status == 403


def test_an_action_without_its_csrf_token_or_from_another_site_is_refused(
    visit: Any, keys: dict[str, str], home: Path
) -> None:
    visitor = on_iris_page(visit, keys["admin"])
    token, post = csrf_of(visitor), visitor.page.request.post
    url = visitor.url + ROLLBACK
    assert post(url, form={}, max_redirects=0).status == 403
    assert post(url, form={"csrf_token": "0" * 40}, max_redirects=0).status == 403
    other_site = {"Origin": "http://attacker.example"}
    answer = post(url, form={"csrf_token": token}, headers=other_site, max_redirects=0)
    assert answer.status == 403
    assert "another site" in answer.text()
    assert production_of(home) == 2
    # The same token from this site is accepted (the refusals above were for cause).
    assert post(url, form={"csrf_token": token}, max_redirects=0).status == 303
    assert production_of(home) == 1
    assert post(url, form={"csrf_token": token}, max_redirects=0).status == 303
    assert production_of(home) == 2


def test_a_rollback_from_the_ui_moves_the_alias(
    visit: Any, keys: dict[str, str], home: Path
) -> None:
    visitor = on_iris_page(visit, keys["admin"])
    visitor.page.get_by_role("button", name="Roll back production to v1").click()
    visitor.page.wait_for_url(re.compile(r".*moved=.*"))
    assert production_of(home) == 1
    assert visitor.page.get_by_role("heading", name="production → v1").is_visible()
    history = visitor.page.locator(".alias-card table").inner_text()
    assert "key:admin" in history  # recorded as the CLI records its moves, with who
    visitor.screenshot("model-iris-after-rollback")
    visitor.page.get_by_role("button", name="Roll back production to v2").click()
    visitor.page.wait_for_url(re.compile(r".*moved=.*"))
    assert production_of(home) == 2


def test_a_json_endpoint_answers_401_as_json_until_signed_in(
    visit: Any, keys: dict[str, str]
) -> None:
    visitor = visit()
    refused = visitor.page.request.get(visitor.url + "/ui/api/models", max_redirects=0)
    assert refused.status == 401
    assert refused.json()["code"] == "unauthorized"
    visitor.sign_in(keys["viewer"])
    answer = visitor.page.request.get(visitor.url + "/ui/api/models")
    assert answer.status == 200
    iris = next(model for model in answer.json()["models"] if model["name"] == "iris")
    assert iris["aliases"] == {"production": 2}
