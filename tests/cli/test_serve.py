"""`servewell serve` (and `demo --serve`) refuse flags they cannot honour before anything
starts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from servewell.cli.app import app
from servewell.http import server


@pytest.mark.parametrize("command", [["serve"], ["demo", "--serve"]])
@pytest.mark.parametrize("port", ["-1", "65536", "99999"])
def test_a_port_out_of_range_is_refused(
    home: object, monkeypatch: pytest.MonkeyPatch, command: list[str], port: str
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "run", lambda config: started.append(vars(config)))
    result = CliRunner().invoke(app, [*command, "--port", port])
    assert result.exit_code == 2
    assert "--port" in result.stderr
    assert started == []  # 99999 used to reach uvicorn, which listened on 99999 % 65536


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The uvicorn settings serve would run with (``servewell.http.server.run``'s
    ``config``, as a dict), recorded instead of run; the variables serve sets are put
    back after."""
    for name in ("SERVEWELL_AUTH__ENABLED", "SERVEWELL_SERVER__MODELS", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # recorded, so put back after
        if not os.environ[name]:
            monkeypatch.delenv(name)
    # serve configures logging onto CliRunner's stderr, which is closed after each run.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setenv("SERVEWELL_SERVER__PORT", "0")  # the port check: any free port
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "run", lambda config: calls.append(vars(config)))
    return calls


@pytest.fixture
def iris_home(home: Path, model_files: dict[str, Path]) -> Path:
    result = CliRunner().invoke(app, ["register", str(model_files["onnx"]), "--name", "iris"])
    assert result.exit_code == 0, result.output
    return home


def test_a_reference_not_registered_fails_fast_naming_it(
    iris_home: Path, started: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(app, ["serve", "--models", "iris,typo"])
    assert result.exit_code == 4  # it used to serve for ever, unready
    assert "'typo'" in result.stderr
    assert "registered models: 'iris'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert started == []


def test_server_models_in_the_settings_are_checked_too(
    iris_home: Path, started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    (iris_home.parent / "servewell.yaml").write_text("server:\n  models: [iris@7]\n")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 4
    assert "'iris@7'" in result.stderr
    assert "no version 7" in result.stderr
    assert started == []


def test_model_settings_naming_no_registered_model_are_warned_about(
    iris_home: Path, started: list[dict[str, Any]]
) -> None:
    (iris_home.parent / "servewell.yaml").write_text(
        "models:\n  irsi:\n    cache: {enabled: false}\n  IRIS:\n    cache: {ttl_s: 5}\n"
    )
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output  # served: a warning, not a refusal
    (line,) = result.stderr.strip().splitlines()  # IRIS matches iris: no line for it
    assert line.startswith("warning: the settings' models.irsi names no registered model")
    assert "(did you mean 'iris'?)" in line
    assert len(started) == 1


def test_known_references_are_served(iris_home: Path, started: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["serve", "--models", "iris@1"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1


def test_an_empty_registry_is_refused_unless_allowed(
    home: Path, started: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 4  # it used to report ready, serving nothing
    assert "nothing to serve" in result.stderr
    assert "--allow-empty" in result.stderr
    assert started == []
    result = CliRunner().invoke(app, ["serve", "--allow-empty"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1


@pytest.mark.parametrize(
    ("env", "yaml", "flag"),
    [
        ({"SERVEWELL_AUTH__ENABLED": "false"}, "", []),
        ({}, "auth:\n  enabled: false\n", []),
        ({}, "", ["--no-auth"]),
    ],
)
def test_auth_off_from_any_source_is_refused_off_loopback(
    home: Path,
    started: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    yaml: str,
    flag: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    serve_logger = logging.getLogger("servewell.serve")
    monkeypatch.setattr(serve_logger, "handlers", [caplog.handler])  # serve resets the root's
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (home.parent / "servewell.yaml").write_text(yaml)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--allow-empty", *flag])
    assert result.exit_code == 2  # SERVEWELL_AUTH__ENABLED=false used to listen publicly
    assert "would open every model" in result.stderr
    assert "--i-know" in result.stderr
    assert started == []
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--allow-empty", "--i-know", *flag]
    )
    assert result.exit_code == 0, result.output
    assert started[0]["host"] == "0.0.0.0"
    warnings = [r.getMessage() for r in caplog.records if r.name == "servewell.serve"]
    assert any("on 0.0.0.0 WITHOUT authentication" in line for line in warnings)
