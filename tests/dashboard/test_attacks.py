"""The dashboard attacked from outside, over HTTP, on a real ``servewell serve``
(``conftest.py``'s server: iris v1 and v2 with a report, the adder, keys ``admin``,
``viewer`` and ``caller``): odd paths answer a 4xx naming what was wrong, never a 500."""

from __future__ import annotations

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
