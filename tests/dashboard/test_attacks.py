"""The dashboard attacked from outside, over HTTP, on a real ``servewell serve``
(``conftest.py``'s server: iris v1 and v2 with a report, the adder, keys ``admin``,
``viewer`` and ``caller``): odd paths answer a 4xx naming what was wrong, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.slow


def _signed_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
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
