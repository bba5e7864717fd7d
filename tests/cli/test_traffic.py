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
    unlabelled = {"labelled": 0, "scored": 0, "metric": "accuracy", "value": None}
    assert policy["arms"] == [
        {"target": "2", "weight": 90, "share": 0.9, "serves": 2, "quality": unlabelled},
        {"target": "canary", "weight": 10, "share": 0.1, "serves": 3, "quality": unlabelled},
    ]
    assert (policy["source"], policy["file_wins"], policy["declared_in"]) == (
        "registry",
        False,
        None,
    )
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


# --- policies declared in servewell.yaml ---------------------------------------------------


def _declare(home: Path, text: str) -> Path:
    """``servewell.yaml`` in the folder the commands run in (the ``home`` fixture's)."""
    path = home.parent / "servewell.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_policy_the_file_owns_is_shown_as_the_files_and_never_changed_here(
    invoke: Invoke, fraud: str, home: Path
) -> None:
    assert invoke("traffic", "split", fraud, "1=100").exit_code == 0  # ignored from now on
    path = _declare(home, "traffic:\n  fraud:\n    split: {2: 90, canary: 10}\n    source: file\n")
    policy = _policy(invoke)
    assert isinstance(policy, dict)
    assert [(arm["target"], arm["weight"], arm["serves"]) for arm in policy["arms"]] == [
        ("2", 90, 2),
        ("canary", 10, 3),
    ]
    assert (policy["source"], policy["file_wins"], policy["declared_in"]) == (
        "file",
        True,
        "servewell.yaml",
    )
    table = invoke("traffic", "show", fraud)
    assert "declared in servewell.yaml (source: file" in table.stdout
    for args in (
        ["split", fraud, "3=100"],
        ["shadow", fraud, "3", "--percent", "5"],
        ["clear", fraud],
    ):
        refused = invoke("traffic", *args)
        assert refused.exit_code == 2, refused.output
        assert refused.stderr.strip() == (
            "error: the traffic policy of fraud is declared in servewell.yaml with source: "
            "file; change it there (or set traffic.fraud.source: registry to manage it from here)"
        )
    assert _policy(invoke) == policy
    path.write_text("traffic:\n  fraud:\n    split: {2: 90, canary: 10}\n", encoding="utf-8")
    stored = _policy(invoke)  # source: registry now: the registry's split is back in force
    assert isinstance(stored, dict)
    assert (stored["source"], stored["declared_in"]) == ("registry", "servewell.yaml")
    assert [arm["target"] for arm in stored["arms"]] == ["1"]


def test_the_files_policy_applies_once_the_registrys_is_cleared(
    invoke: Invoke, fraud: str, home: Path
) -> None:
    _declare(home, "traffic:\n  fraud:\n    split: {'2': 100}\n")
    assert invoke("traffic", "split", fraud, "3=100").exit_code == 0
    table = invoke("traffic", "show", fraud)
    assert "from the registry" in table.stdout
    assert "servewell.yaml declares one too" in table.stdout
    cleared = invoke("traffic", "clear", fraud)
    assert cleared.exit_code == 0
    assert "the policy servewell.yaml declares for fraud applies now" in cleared.stdout
    policy = _policy(invoke)
    assert isinstance(policy, dict)
    assert (policy["source"], [arm["target"] for arm in policy["arms"]]) == ("file", ["2"])
    assert invoke("traffic", "show", "--json").exit_code == 0


def test_a_bad_declared_policy_is_one_line_naming_the_key(
    invoke: Invoke, fraud: str, home: Path
) -> None:
    _declare(home, "traffic:\n  fraud:\n    split: {2: 90, 3: 20}\n")
    for args in (["show", fraud], ["split", fraud, "2=100"]):
        result = invoke("traffic", *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            "error: invalid settings (servewell.yaml): traffic.fraud.split: weights must add "
            "up to 100; 2=90 3=20 adds up to 110"
        )


# --- accuracy per arm ------------------------------------------------------------------------


def _log(home: Path, rows: list[tuple[str, int, str, int, int | None]]) -> None:
    """Logged predictions (request id, version, arm, predicted label, true label or None),
    written as a server's prediction log writes them, then their labels."""
    import time

    from servewell.bootstrap import build_services
    from servewell.registry.predictions import PredictionRow, SqlPredictionStore
    from servewell.settings import Settings

    services = build_services(Settings(home=home))
    try:
        store = SqlPredictionStore(services.registry)
        now = time.time()
        store.write(
            [
                PredictionRow(
                    now, rid, "fraud", v, arm, None, 1.0, False, json.dumps({"label": [out]}), None
                )
                for rid, v, arm, out, _ in rows
            ]
        )
        store.label("fraud", [(rid, truth) for rid, _, _, _, truth in rows if truth is not None])
    finally:
        services.close()


def test_show_scores_each_arm_on_its_labelled_predictions(
    invoke: Invoke, fraud: str, home: Path
) -> None:
    assert invoke("traffic", "split", fraud, "2=90", "canary=10").exit_code == 0
    _log(home, [("a", 2, "2", 1, 1), ("b", 2, "2", 0, 1), ("c", 2, "2", 2, 2), ("d", 2, "2", 1, 1),
                ("e", 3, "canary", 1, None)])  # fmt: skip
    policy = _policy(invoke)
    assert isinstance(policy, dict)
    assert [arm["quality"] for arm in policy["arms"]] == [
        {"labelled": 4, "scored": 4, "metric": "accuracy", "value": 0.75},
        {"labelled": 0, "scored": 0, "metric": "accuracy", "value": None},
    ]
    assert "quality_since" in policy
    table = invoke("traffic", "show", fraud)
    assert table.exit_code == 0
    assert "accuracy" in table.stdout
    assert "0.750" in table.stdout
    assert "—" in table.stdout  # the canary arm: no labels yet
    # Since a while: the same rows; a window that starts after them: none.
    recent = json.loads(invoke("traffic", "show", fraud, "--since", "1h", "--json").stdout)
    assert recent["arms"][0]["quality"]["value"] == 0.75
    bad = invoke("traffic", "show", fraud, "--since", "soon")
    assert bad.exit_code == 2
    assert "--since: 'soon' is not a duration" in bad.stderr


def test_a_file_may_own_a_model_and_declare_no_policy_for_it(
    invoke: Invoke, fraud: str, home: Path
) -> None:
    assert invoke("traffic", "split", fraud, "1=100").exit_code == 0
    _declare(home, "traffic:\n  fraud: {source: file}\n  later: {split: {'1': 100}}\n")
    assert _policy(invoke) is None  # the registry's split is not served
    shown = invoke("traffic", "show", fraud)
    assert "fraud has no traffic policy: servewell.yaml owns it (source: file)" in shown.stdout
    listing = invoke("traffic", "show", "--json")  # 'later' is not registered (yet)
    assert listing.exit_code == 0, listing.output
    assert [policy["model"] for policy in json.loads(listing.stdout)] == ["later"]
