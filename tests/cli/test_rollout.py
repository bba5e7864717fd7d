"""``servewell rollout`` through the command line: start (the first split written at
once), status, abort, and the refusals with their exit codes, the registry unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


@pytest.fixture
def fraud(invoke: Invoke, model_files: dict[str, Path]) -> str:
    """Model 'fraud' with versions 1-3, production → 1."""
    for _ in range(3):
        assert invoke("register", str(model_files["onnx"]), "--name", "fraud").exit_code == 0
    assert invoke("alias", "set", "fraud", "production", "1").exit_code == 0
    return "fraud"


def _status(invoke: Invoke) -> dict[str, object]:
    shown = invoke("rollout", "status", "fraud", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert isinstance(data, dict)
    return data


def test_start_writes_the_first_split_and_abort_clears_it(invoke: Invoke, fraud: str) -> None:
    started = invoke(
        "rollout", "start", fraud, "--to", "2", "--steps", "5,25,100", "--every", "10m"
    )
    assert started.exit_code == 0, started.output
    assert "candidate at 5 %" in started.stdout
    policy = json.loads(invoke("traffic", "show", fraud, "--json").stdout)
    assert [(a["target"], a["weight"]) for a in policy["arms"]] == [("1", 95), ("2", 5)]
    status = _status(invoke)
    assert (status["state"], status["percent"], status["every_s"]) == ("running", 5, 600.0)
    aborted = invoke("rollout", "abort", fraud)
    assert aborted.exit_code == 0, aborted.output
    status = _status(invoke)
    assert status["state"] == "aborted"
    assert "aborted by user:" in str(status["reason"])
    assert [e["kind"] for e in status["events"]] == ["started", "aborted"]  # type: ignore[union-attr,index]
    assert json.loads(invoke("traffic", "show", fraud, "--json").stdout) is None
    again = invoke("rollout", "abort", fraud)
    assert again.exit_code == 4
    assert "no running rollout" in again.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--to", "2", "--steps", "5,25,50"), 2, "the last step must be 100"),
        (("--to", "2", "--steps", "50,25,100"), 2, "larger than the one before"),
        (("--to", "2", "--steps", "5,150"), 2, "from 1 to 100"),
        (("--to", "2", "--steps", "100"), 2, "at least one step below 100"),
        (("--to", "2", "--steps", "5,x,100"), 2, "whole percentages"),
        (("--to", "2", "--every", "soon"), 2, "is not a duration"),
        (("--to", "2", "--max-error-rate", "2"), 2, "between 0 and 1"),
        (("--to", "2", "--max-error-rate", "inf"), 2, "between 0 and 1"),
        (("--to", "2", "--max-error-rate", "nan"), 2, "between 0 and 1"),
        (("--to", "2", "--max-p99-ratio", "inf"), 2, "a finite number, 1 or more"),
        (("--to", "2", "--max-p99-ratio", "nan"), 2, "a finite number, 1 or more"),
        (("--to", "1"), 2, "already serves"),
        (("--to", "9"), 4, "has no version 9"),
    ],
)
def test_refusals(
    invoke: Invoke, fraud: str, args: tuple[str, ...], code: int, message: str
) -> None:
    result = invoke("rollout", "start", fraud, *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(invoke("traffic", "show", fraud, "--json").stdout) is None


def test_a_second_rollout_or_a_manual_split_is_refused(invoke: Invoke, fraud: str) -> None:
    assert invoke("traffic", "split", fraud, "1=90", "3=10").exit_code == 0
    refused = invoke("rollout", "start", fraud, "--to", "2")
    assert refused.exit_code == 2
    assert "set by hand (1=90 3=10)" in refused.stderr
    assert invoke("traffic", "clear", fraud).exit_code == 0
    assert invoke("rollout", "start", fraud, "--to", "2").exit_code == 0
    second = invoke("rollout", "start", fraud, "--to", "3")
    assert second.exit_code == 2
    assert "abort it first" in second.stderr
    assert invoke("rollout", "status", "nobody").exit_code == 4


def test_status_of_a_model_never_rolled_out(invoke: Invoke, fraud: str) -> None:
    result = invoke("rollout", "status", fraud)
    assert result.exit_code == 4
    assert "has no rollout" in result.stderr


def test_a_model_the_settings_file_owns_is_refused(invoke: Invoke, fraud: str, home: Path) -> None:
    """The file's split is what servers serve (``source: file``): a rollout's steps would
    never be, so it is refused, naming the file, as ``traffic split`` is."""
    (home.parent / "servewell.yaml").write_text(
        "traffic:\n  fraud:\n    split: {'1': 50, '3': 50}\n    source: file\n", encoding="utf-8"
    )
    result = invoke("rollout", "start", fraud, "--to", "2", "--steps", "5,100", "--every", "5s")
    assert result.exit_code == 2, result.output
    assert "declared in servewell.yaml with source: file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert invoke("rollout", "status", fraud).exit_code == 4
