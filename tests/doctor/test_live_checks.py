"""Metrics, health, API docs, keys and CORS as a running server answers them: a real
servewell on a loopback port, a port nobody listens on, and a stdlib server sending
the CORS headers a misconfigured proxy would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from doctor_context import statuses
from redis_server import free_port
from servewell.bootstrap import Services
from servewell.doctor.context import build_context
from servewell.doctor.documentation import DocumentationCheck
from servewell.doctor.health import HealthCheck
from servewell.doctor.live import probe_server
from servewell.doctor.metrics import MetricsCheck
from servewell.doctor.security import SecurityCheck
from servewell.doctor.versioning import VersioningCheck
from servewell.http import create_app
from servewell.registry.keys import ApiKeyStore
from servewell.settings import Settings
from serving_models import register_python, serve_in_thread

pytestmark = pytest.mark.slow


def serve_fraud(fraud: Services, **settings: Any) -> Any:
    return serve_in_thread(create_app(Settings(home=fraud.settings.home, **settings)))


def test_a_running_server_passes_metrics_health_docs_and_keys(fraud: Services) -> None:
    _, token = ApiKeyStore(fraud.registry).create("doctor")
    with serve_fraud(fraud) as server:
        live = probe_server(server.url, token)
    context = build_context(fraud, live)
    assert [m.name for m in context.models] == ["fraud"]  # from the live listing
    assert statuses(MetricsCheck().run(context)) == ["pass"]
    assert statuses(HealthCheck().run(context)) == ["pass"]
    assert statuses(DocumentationCheck().run(context), "documentation: API docs") == ["pass"]
    auth = SecurityCheck().run(context)[0]
    assert auth.status.value == "pass"
    assert "without a key answered 401" in auth.found


def test_a_server_without_keys_fails_auth_whatever_the_local_settings_say(
    fraud: Services,
) -> None:
    assert fraud.settings.auth.enabled
    with serve_fraud(fraud, auth={"enabled": False}) as server:
        live = probe_server(server.url, None)
    auth = SecurityCheck().run(build_context(fraud, live))[0]
    assert auth.status.value == "fail"
    assert "answered 200" in auth.found


def test_no_server_answering_fails_metrics_health_and_docs(fraud: Services) -> None:
    live = probe_server(f"http://127.0.0.1:{free_port()}", None, timeout_s=2)
    context = build_context(fraud, live)
    for check in (MetricsCheck(), HealthCheck()):
        findings = check.run(context)
        assert statuses(findings) == ["fail"]
        assert "no answer (ConnectError" in findings[0].found
    assert statuses(DocumentationCheck().run(context), "documentation: API docs") == ["fail"]


def test_without_a_server_the_live_items_warn_with_how_to_ask(fraud: Services) -> None:
    context = build_context(fraud, None)
    for check in (MetricsCheck(), HealthCheck()):
        [finding] = check.run(context)
        assert finding.status.value == "warn"
        assert finding.fix.startswith("servewell doctor --url")


class _AnyOriginWithCredentials(BaseHTTPRequestHandler):
    """What a proxy configured with ``*`` and credentials answers."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def permissive_proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AnyOriginWithCredentials)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cors_star_with_credentials_fails(fraud: Services, permissive_proxy: str) -> None:
    live = probe_server(permissive_proxy, None)
    context = build_context(fraud, live)
    cors = next(f for f in SecurityCheck().run(context) if f.item == "security: CORS")
    assert cors.status.value == "fail"
    assert "never '*' with credentials" in cors.fix


def test_a_server_answering_another_version_than_production_warns(fraud: Services) -> None:
    register_python(fraud, "fraud", "sum", signature="sum.json")
    with serve_fraud(fraud, auth={"enabled": False}, server={"models": ["fraud@2"]}) as server:
        live = probe_server(server.url, None)
    findings = VersioningCheck().run(build_context(fraud, live))
    served = [f for f in findings if f.item == "versioning: served version"]
    assert [f.status.value for f in served] == ["warn"]
    assert "answers fraud with v2 while production names v1" in served[0].found
