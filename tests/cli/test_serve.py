"""`servewell serve` (and `demo --serve`) refuse flags they cannot honour before anything
starts."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from servewell.cli.app import app


@pytest.mark.parametrize("command", [["serve"], ["demo", "--serve"]])
@pytest.mark.parametrize("port", ["-1", "65536", "99999"])
def test_a_port_out_of_range_is_refused(
    home: object, monkeypatch: pytest.MonkeyPatch, command: list[str], port: str
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    result = CliRunner().invoke(app, [*command, "--port", port])
    assert result.exit_code == 2
    assert "--port" in result.stderr
    assert started == []  # 99999 used to reach uvicorn, which listened on 99999 % 65536
