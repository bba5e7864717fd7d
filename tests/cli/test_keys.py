from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

Invoke = Callable[..., Result]


def test_create_list_revoke(invoke: Invoke, model_files: dict[str, Path]) -> None:
    assert invoke("register", str(model_files["onnx"]), "--name", "iris").exit_code == 0
    created = invoke(
        "keys",
        "create",
        "--name",
        "ci",
        "--scopes",
        "predict,admin",
        "--models",
        "iris",
        "--rate",
        "100/minute",
        "--json",
    )
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)["key"]
    assert token.startswith("sw_")

    listing = invoke("keys", "list")
    assert "ci" in listing.stdout
    assert token not in listing.stdout  # never the secret again
    as_json = json.loads(invoke("keys", "list", "--json").stdout)
    assert as_json[0]["scopes"] == ["predict", "admin"]
    assert "key" not in as_json[0]

    assert invoke("keys", "revoke", "ci").exit_code == 0
    assert json.loads(invoke("keys", "list", "--json").stdout)[0]["revoked_at"] is not None


def test_bad_key_requests(invoke: Invoke) -> None:
    for args, message in [
        (["keys", "create", "--name", "x", "--scopes", "root"], "unknown scope(s) root"),
        (["keys", "create", "--name", "x", "--rate", "often"], "not like 100/minute"),
        (["keys", "revoke", "ghost"], "no API key named 'ghost'"),
    ]:
        result = invoke(*args)
        assert result.exit_code != 0
        assert message in result.stderr
    assert json.loads(invoke("keys", "list", "--json").stdout) == []


def test_a_key_for_an_unknown_model_is_refused_unless_allowed(
    invoke: Invoke, model_files: dict[str, Path]
) -> None:
    assert invoke("register", str(model_files["onnx"]), "--name", "fraud").exit_code == 0
    refused = invoke("keys", "create", "--name", "app", "--models", "fraud,frud")
    assert refused.exit_code == 4
    assert refused.stderr.strip() == (
        "error: unknown model(s) 'frud'; registered models: 'fraud' "
        "(--allow-unknown-models to create the key anyway)"
    )
    assert json.loads(invoke("keys", "list", "--json").stdout) == []
    allowed = invoke(
        "keys", "create", "--name", "app", "--models", "frud", "--allow-unknown-models", "--json"
    )
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["models"] == ["frud"]


def test_a_duplicate_name_is_bad_input_and_a_second_revocation_not_found(
    invoke: Invoke,
) -> None:
    assert invoke("keys", "create", "--name", "ci").exit_code == 0
    duplicate = invoke("keys", "create", "--name", "ci")
    assert duplicate.exit_code == 2
    assert "an API key named 'ci' exists already" in duplicate.stderr
    assert invoke("keys", "revoke", "ci").exit_code == 0
    again = invoke("keys", "revoke", "ci")
    assert again.exit_code == 4
    assert "API key 'ci' was revoked already" in again.stderr
    assert invoke("keys", "revoke", "ghost").exit_code == 4
    assert invoke("keys", "create", "--name", "ci").exit_code == 2  # revoked names stay taken


def test_a_viewer_key_for_the_dashboard(invoke: Invoke) -> None:
    created = invoke("keys", "create", "--name", "looker", "--scope", "viewer", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["scopes"] == ["viewer"]
