"""The dashboard attacked from outside, over HTTP, on a real ``servewell serve``
(``conftest.py``'s server: iris v1 and v2 with a report, the adder, keys ``admin``,
``viewer`` and ``caller``): odd paths answer a 4xx naming what was wrong, never a 500."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.slow


def _signed_in(url: str, key: str, wait: bool = False) -> httpx.Client:
    """A client signed in with ``key`` (``wait``: for a new key every worker may not
    have read yet, bounded)."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    deadline = time.monotonic() + 30
    answer = client.post("/ui/sign-in", data={"key": key})
    while wait and answer.status_code == 401 and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = client.post("/ui/sign-in", data={"key": key})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def viewer(server: str, keys: dict[str, str]) -> Iterator[httpx.Client]:
    client = _signed_in(server, keys["viewer"])
    yield client
    client.close()


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "0", "abc", "²"])
def test_a_document_of_a_version_number_out_of_range_is_a_404(
    viewer: httpx.Client, number: str
) -> None:
    """A number past the registry's 64-bit range made the error reply itself fail to
    encode (500, plain text)."""
    answer = viewer.get(f"/ui/models/iris/versions/{number}/files/report.html")
    assert answer.status_code == 404, answer.text
    assert "has no version" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_the_sign_in_page_shows_no_message_a_link_brings(server: str) -> None:
    """Anyone could link to the real sign-in page with their own words on it ("your
    session expired: paste your key at https://evil.example"), shown as the server's."""
    lure = "Paste your key at https://evil.example instead"
    answer = httpx.get(server + "/ui/sign-in", params={"why": lure})
    assert answer.status_code == 200
    assert "evil.example" not in answer.text


def test_the_sign_in_page_says_why_the_dashboard_sent_a_visitor_there(
    server: str, keys: dict[str, str]
) -> None:
    with httpx.Client(base_url=server, timeout=30, follow_redirects=True) as visitor:
        assert "sign in with an API key" in visitor.get("/ui/models").text
        visitor.cookies.set("servewell_session", "x" * 12 + ".1.aaaaaaaaaaaaaaaa." + "0" * 64)
        assert "session has ended" in visitor.get("/ui/models").text
    visitor = _signed_in(server, keys["viewer"])
    try:
        kept = visitor.cookies["servewell_session"]
        key_id, expires_at, nonce, signature = kept.split(".")
        tampered = f"{key_id}.{int(expires_at) + 3600}.{nonce}.{signature}"
        visitor.cookies.set("servewell_session", tampered, path="/ui")
        assert "session has ended" in visitor.get("/ui/models", follow_redirects=True).text
        visitor.cookies.set("servewell_session", kept, path="/ui")
        token = _csrf_token(visitor)
        out = visitor.post("/ui/sign-out", data={"csrf_token": token}, follow_redirects=True)
        assert "signed out" in out.text
    finally:
        visitor.close()


def _csrf_token(client: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/models").text)
    assert found is not None
    return found[1]


def test_a_forged_cookie_learns_no_key_name(server: str, keys: dict[str, str]) -> None:
    """A cookie is checked against its key's hash only once the key is found: a forged
    one naming a revoked key's id (the id is the visible part of a key, in listings and
    logs) was told the key's name, and an unknown id was told apart from a known one."""
    admin = _signed_in(server, keys["admin"])
    try:
        token = _csrf_token(admin)
        made = admin.post(
            "/ui/keys", data={"name": "gone", "scopes": "viewer", "csrf_token": token}
        )
        secret = re.search(r"sw_([a-z2-7]{12})_[A-Za-z0-9_-]{43}", made.text)
        assert made.status_code == 200
        assert secret is not None
        holder = _signed_in(server, secret[0], wait=True)  # once the key ring has it
        revoked = admin.post("/ui/keys/gone/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303
        _until_refused(holder)  # every worker's key ring knows it is revoked
        holder.close()
    finally:
        admin.close()
    forged = {
        f"{secret[1]}.9999999999.{'a' * 24}.{'0' * 64}",
        f"bbbbbbbbbbbb.9999999999.{'a' * 24}.{'0' * 64}",
    }
    answers = [
        httpx.get(server + "/ui/api/jobs", cookies={"servewell_session": cookie})
        for cookie in sorted(forged)
    ]
    assert [answer.status_code for answer in answers] == [401, 401]
    assert "gone" not in answers[0].text + answers[1].text
    assert answers[0].json() == answers[1].json()


def _until_refused(client: httpx.Client, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/ui/api/jobs").status_code != 401:
        assert time.monotonic() < deadline, "the revoked key's session still works"
        time.sleep(0.1)


def test_a_key_limited_to_some_models_cannot_read_the_others_through_the_dashboard(
    server: str, keys: dict[str, str]
) -> None:
    """The dashboard shows every model (pages, live figures, drift, the stored reports):
    a viewer key limited to the adder read iris's training report through it. Such a key
    is refused at sign-in, saying why; the API still takes it for the adder."""
    admin = _signed_in(server, keys["admin"])
    try:
        made = admin.post(
            "/ui/keys",
            data={
                "name": "adder-only",
                "scopes": ["viewer", "predict"],
                "models": "adder",
                "csrf_token": _csrf_token(admin),
            },
        )
        secret = re.search(r"sw_[a-z2-7]{12}_[A-Za-z0-9_-]{43}", made.text)
        assert secret is not None
    finally:
        admin.close()
    adder = server + "/v1/models/adder:predict"
    deadline = time.monotonic() + 30  # until every worker's key ring has the new key
    while httpx.post(adder, json={}, headers={"X-API-Key": secret[0]}).status_code == 401:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with httpx.Client(base_url=server, timeout=30) as visitor:
        answer = visitor.post("/ui/sign-in", data={"key": secret[0]})
        assert answer.status_code == 403, answer.text
        assert "limited to some models" in answer.text
        assert "servewell_session" not in visitor.cookies
        report = visitor.get("/ui/models/iris/versions/2/files/report.html")
        assert report.status_code == 303
