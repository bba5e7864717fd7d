"""A model's bare name is answered by the version its first reference names, never by
another: with ``--models fraud,fraud@2`` and fraud's production version failing to load,
``fraud`` is not ready (503) while ``fraud@2`` answers, and ``GET /v1/models/fraud``
shows the failed version with its error (a real uvicorn on a loopback port)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import register_python, serve_in_thread


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fraud v1 (production) needs NEEDS_ENV_TOKEN to load, and it is gone by serving
    time; fraud v2 doubles ``x`` and loads."""
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        monkeypatch.setenv("NEEDS_ENV_TOKEN", "registered with it")
        register_python(services, "fraud", "needs_env")
        monkeypatch.delenv("NEEDS_ENV_TOKEN")
        register_python(services, "fraud", "two_classes", model_class="Doubler")
        services.registry.set_alias("fraud", "production", 1)
    finally:
        services.close()
    return home


def test_a_failed_default_version_is_not_ready_and_never_answered_by_another(
    home: Path,
) -> None:
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["fraud", "fraud@2"]),
    )
    with serve_in_thread(create_app(settings)) as server:
        bare = httpx.post(
            f"{server.url}/v1/models/fraud:predict", json={"instances": [1.5]}, timeout=30
        )
        pinned = httpx.post(
            f"{server.url}/v1/models/fraud/versions/2:predict",
            json={"instances": [1.5]},
            timeout=30,
        )
        status = httpx.get(f"{server.url}/v1/models/fraud", timeout=30)
    assert bare.status_code == 503, bare.text
    assert bare.json()["code"] == "not_ready"
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["predictions"] == [3.0]
    assert status.status_code == 200, status.text
    failed, loaded = status.json()["model_version_status"]
    assert (failed["version"], failed["state"]) == ("1", "END")
    assert failed["status"]["error_code"] == "UNKNOWN"
    assert "NEEDS_ENV_TOKEN" in failed["status"]["error_message"]
    assert (loaded["version"], loaded["state"]) == ("2", "AVAILABLE")
