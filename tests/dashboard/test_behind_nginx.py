"""The dashboard behind the shipped reverse proxy (``deploy/nginx/proxy.conf``, as the
compose stack and the loopback topology include it): a real nginx on a loopback port in
front of the real server, a real browser signing in through it and acting.

A browser sends ``Origin: http://host:port`` with every POST; the dashboard refuses
one that does not name the ``Host`` it was sent to, so the proxy must pass the Host the
browser sent, port included."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy_tools import DEPLOY, find_tool
from redis_server import free_port
from serving_models import wait_until_ready

PROXY_CONF = DEPLOY / "nginx" / "proxy.conf"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def proxied(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx with the shipped proxy.conf in front of the dashboard's server; its URL."""
    binary = find_tool("nginx", "apt-get install nginx-light")
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    temp = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temp}"
        f"    upstream servewell {{ server {server.removeprefix('http://')}; }}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n"
        f"        include {PROXY_CONF};\n    }}\n}}\n"
    )
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    process = subprocess.Popen(
        [*command, "-e", str(prefix / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, timeout_s=30)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_browser_signs_in_and_signs_out_through_nginx(
    browser: Any, proxied: str, keys: dict[str, str]
) -> None:
    """nginx passed ``Host: 127.0.0.1`` (``$host`` drops the port): every POST a browser
    made through it, signing in first, was refused as coming from another site."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(proxied + "/ui/sign-in")
        page.get_by_label("API key").fill(keys["viewer"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ui/models$"))
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r".*/ui/sign-in\?why="))
    finally:
        context.close()


def test_another_sites_origin_is_still_refused_through_nginx(
    proxied: str, keys: dict[str, str]
) -> None:
    answer = httpx.post(
        proxied + "/ui/sign-in",
        data={"key": keys["viewer"]},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status_code == 403
    assert "another site" in answer.text
