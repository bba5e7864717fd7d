from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import Result

Invoke = Callable[..., Result]


def test_create_list_revoke(invoke: Invoke) -> None:
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
