"""The session cookie as servers set and read it. A session is a signed cookie, not the
memory of one process: a cookie one server process issued is good in every other
(another worker, another replica, the same server after a restart) until it expires or
its key is revoked; it is Secure when the request came over TLS."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from serving_models import build_adder_home, create_key, serve_process

pytestmark = pytest.mark.slow


def test_a_session_issued_by_one_process_holds_in_others(tmp_path: Path) -> None:
    home = build_adder_home(tmp_path / "home")
    key = create_key(home, "looker", scopes=("viewer",))
    with serve_process(home, "--models", "adder") as (url, _process):
        signed_in = httpx.post(f"{url}/ui/sign-in", data={"key": key}, timeout=30)
        assert signed_in.status_code == 303
        cookies = signed_in.cookies
    with serve_process(home, "--models", "adder", "--workers", "2") as (url, _process):
        for _ in range(6):  # a new connection each: either worker may take it
            with httpx.Client(base_url=url, cookies=cookies, timeout=30) as client:
                assert client.get("/ui/models/adder").status_code == 200
        forged = httpx.Cookies({name: _altered(value) for name, value in cookies.items()})
        with httpx.Client(base_url=url, cookies=forged, timeout=30) as client:
            answer = client.get("/ui/models/adder")
        assert answer.status_code == 303
        assert "/ui/sign-in?why=ended" in answer.headers["location"]


def _altered(cookie: str) -> str:
    """The cookie with its signature's last digits changed."""
    return cookie[:-4] + ("1111" if cookie.endswith("0000") else "0000")


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(tmp_path: Path) -> None:
    home = build_adder_home(tmp_path / "home")
    key = create_key(home, "looker", scopes=("viewer",))
    env = {"SERVEWELL_SERVER__FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with serve_process(home, "--models", "adder", env=env) as (url, _process):
        over_tls = httpx.post(
            f"{url}/ui/sign-in",
            data={"key": key},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"},
            timeout=30,
        )
        plain = httpx.post(f"{url}/ui/sign-in", data={"key": key}, timeout=30)
    assert over_tls.status_code == plain.status_code == 303
    assert "; secure" in over_tls.headers["set-cookie"].lower()
    assert "secure" not in plain.headers["set-cookie"].lower()
