"""``servewell predict`` takes the server's model steps: its output filters too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import ECHO_VALUES, register_echo

Invoke = Callable[..., Result]


@pytest.fixture
def echo_rows(home: Path, tmp_path: Path) -> Path:
    """``echo`` registered in the command's home; a file of one row for it, whose text
    holds an e-mail address."""
    services = build_services(Settings(home=home))
    try:
        register_echo(services, tmp_path)
    finally:
        services.close()
    columns = {f"in_{name}": [values] for name, values in ECHO_VALUES.items()}
    columns["in_BYTES"] = [["write to ada@example.com", "nothing"]]
    path = tmp_path / "row.json"
    path.write_text(json.dumps({"inputs": columns}))
    return path


def test_predict_applies_the_output_filters(
    invoke: Invoke, echo_rows: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = invoke("predict", "echo", str(echo_rows), "--json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["predictions"][0]["out_BYTES"] == [
        "write to ada@example.com",
        "nothing",
    ]
    monkeypatch.setenv("SERVEWELL_OUTPUT_FILTERS", '{"echo": {"policy": "redact"}}')
    filtered = invoke("predict", "echo", str(echo_rows), "--json")
    assert filtered.exit_code == 0, filtered.output
    row = json.loads(filtered.stdout)["predictions"][0]
    assert row["out_BYTES"] == ["write to [REDACTED:email]", "nothing"]
    assert row["out_INT32"] == ECHO_VALUES["INT32"]  # numbers pass through
