from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from servewell.cli.app import app

Invoke = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty SERVEWELL_HOME for the command under test."""
    home = tmp_path / "home"
    monkeypatch.setenv("SERVEWELL_HOME", str(home))
    monkeypatch.delenv("SERVEWELL_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no servewell.yaml from the developer's folder
    return home


@pytest.fixture
def invoke(home: Path) -> Invoke:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def demo(invoke: Invoke) -> Result:
    """``servewell demo`` run in the test's home: breast-cancer@1, alias production."""
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def registry_state(invoke: Invoke) -> Callable[[], object]:
    """Everything the registry holds, as JSON, to compare before and after."""

    def snapshot() -> object:
        listing = json.loads(invoke("models", "--json").stdout)
        return [
            (model["name"], json.loads(invoke("models", "list", model["name"], "--json").stdout))
            for model in listing
        ]

    return snapshot
