"""``servewell traffic``, ``alias history`` and ``rollback`` through the command line."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


@pytest.fixture
def fraud(invoke: Invoke, model_files: dict[str, Path]) -> str:
    """Model 'fraud' with versions 1-3, production → 2, canary → 3."""
    for _ in range(3):
        assert invoke("register", str(model_files["onnx"]), "--name", "fraud").exit_code == 0
    assert invoke("alias", "set", "fraud", "production", "2").exit_code == 0
    assert invoke("alias", "set", "fraud", "canary", "3").exit_code == 0
    return "fraud"


def _policy(invoke: Invoke) -> object:
    shown = invoke("traffic", "show", "fraud", "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)


def test_split_then_show(invoke: Invoke, fraud: str) -> None:
    assert _policy(invoke) is None
    result = invoke("traffic", "split", fraud, "2=90", "canary=10", "--sticky-header", "X-Acct")
    assert result.exit_code == 0, result.output
    assert "version 3" in result.stdout  # the canary arm, resolved
    assert "add --server URL" in result.stdout  # measured only by a running server
    policy = _policy(invoke)
    assert isinstance(policy, dict)
    assert policy["arms"] == [
        {"target": "2", "weight": 90, "share": 0.9, "serves": 2},
        {"target": "canary", "weight": 10, "share": 0.1, "serves": 3},
    ]
    assert policy["sticky_header"] == "X-Acct"
    assert policy["updated_by"] == f"user:{getpass.getuser()}"
    listing = json.loads(invoke("traffic", "show", "--json").stdout)
    assert listing == [policy]


def test_shadow_beside_a_split_and_off_again(invoke: Invoke, fraud: str) -> None:
    assert invoke("traffic", "split", fraud, "1=50", "2=50").exit_code == 0
    result = invoke("traffic", "shadow", fraud, "3", "--percent", "20")
    assert result.exit_code == 0, result.output
    assert "copies of 20 %" in result.stdout
    policy = _policy(invoke)
    assert isinstance(policy, dict)
    assert policy["shadow"] == {"target": "3", "percent": 20.0}
    assert [arm["target"] for arm in policy["arms"]] == ["1", "2"]
    assert invoke("traffic", "shadow", fraud, "--off").exit_code == 0
    after = _policy(invoke)
    assert isinstance(after, dict)
    assert after["shadow"] is None
    assert after["arms"] == policy["arms"]


def test_clear(invoke: Invoke, fraud: str) -> None:
    assert invoke("traffic", "shadow", fraud, "canary", "--percent", "5").exit_code == 0
    cleared = invoke("traffic", "clear", fraud)
    assert cleared.exit_code == 0
    assert "cleared the traffic policy of fraud" in cleared.stdout
    assert _policy(invoke) is None
    again = invoke("traffic", "clear", fraud)
    assert again.exit_code == 0
    assert "has no traffic policy" in again.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["split", "fraud", "2=90", "3=20"],
            2,
            "weights must add up to 100; 2=90 3=20 adds up to 110",
        ),
        (["split", "fraud", "2=50", "2=50"], 2, "arm '2' is named twice"),
        (["split", "fraud", "2=90", "3"], 2, "arm '3' should read TARGET=WEIGHT"),
        (["split", "fraud", "2=100", "--sticky-header", "X User"], 2, "not an HTTP header name"),
        (["split", "fraud", "2=90", "9=10"], 4, "model 'fraud' has no version 9"),
        (["split", "fraud", "2=90", "blue=10"], 4, "model 'fraud' has no alias 'blue'"),
        (["split", "ghost", "1=100"], 4, "model 'ghost' is not registered"),
        (["split", "bad name", "1=100"], 2, "invalid model reference"),
        (["shadow", "fraud", "3", "--percent", "150"], 2, "between 0 and 100, got 150"),
        (["shadow", "fraud", "3"], 2, "add --percent"),
        (["shadow", "fraud"], 2, "give a TARGET and --percent, or --off"),
        (["shadow", "fraud", "7", "--percent", "5"], 4, "model 'fraud' has no version 7"),
        (["show", "ghost"], 4, "model 'ghost' is not registered"),
    ],
)
def test_bad_requests_are_one_line_and_change_nothing(
    invoke: Invoke, fraud: str, args: list[str], code: int, message: str
) -> None:
    assert invoke("traffic", "split", fraud, "2=50", "3=50").exit_code == 0
    before = _policy(invoke)
    result = invoke("traffic", *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _policy(invoke) == before


def test_alias_moves_are_recorded_and_rolled_back(invoke: Invoke, fraud: str) -> None:
    assert invoke("alias", "set", fraud, "production", "3").exit_code == 0
    back = invoke("rollback", fraud)
    assert back.exit_code == 0, back.output
    assert "fraud@production → version 2 (was 3)" in back.stdout
    moves = json.loads(invoke("alias", "history", fraud, "--alias", "production", "--json").stdout)
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(None, 2), (2, 3), (3, 2)]
    assert {m["moved_by"] for m in moves} == {f"user:{getpass.getuser()}"}
    table = invoke("alias", "history", fraud)
    assert table.exit_code == 0
    assert "canary" in table.stdout


def test_an_alias_set_by_register_records_who_set_it(
    invoke: Invoke, model_files: dict[str, Path]
) -> None:
    registered = invoke(
        "register", str(model_files["onnx"]), "--name", "fraud", "--alias", "staging"
    )
    assert registered.exit_code == 0, registered.output
    moves = json.loads(invoke("alias", "history", "fraud", "--alias", "staging", "--json").stdout)
    assert [(m["to_version"], m["moved_by"]) for m in moves] == [(1, f"user:{getpass.getuser()}")]


def test_rollback_with_nothing_to_go_back_to(invoke: Invoke, fraud: str) -> None:
    result = invoke("rollback", fraud, "--alias", "canary")
    assert result.exit_code == 4
    assert result.stderr.strip() == (
        "error: alias 'canary' of model 'fraud' has no previous version to roll back to: "
        "it was first set to version 3"
    )
    missing = invoke("rollback", fraud, "--alias", "staging")
    assert missing.exit_code == 4
    assert "model 'fraud' has no alias 'staging'" in missing.stderr
