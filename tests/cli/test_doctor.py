"""``servewell doctor`` against real servers: a bare ``servewell serve --no-auth`` fails
the security, rate-limit and load-test items, each with its fix; once the fixes are
followed (keys on with a scoped, rated key, the settings the fixes name, a passing load
test recorded), it passes. The load test is recorded through ``LoadTestStore`` directly:
the ``loadtest`` command is built on another branch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import Result

from servewell.bootstrap import build_services
from servewell.registry.loadtests import LoadTestStore
from servewell.settings import Settings
from serving_models import serve_process

#: Where the fixes that are settings say they go.
IN_FILE = " in servewell.yaml"


Invoke = Callable[..., Result]


def test_api_key_without_url_is_bad_input(invoke: Invoke) -> None:
    result = invoke("doctor", "--api-key", "sw_x")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: --api-key is sent to the server --url names; give --url too"
    )


def test_an_unknown_model_exits_4(invoke: Invoke) -> None:
    result = invoke("doctor", "--model", "nope")
    assert result.exit_code == 4
    assert "model 'nope' is not registered" in result.stderr


def _items(result: Any) -> dict[str, dict[str, Any]]:
    return {item["item"]: item for item in json.loads(result.stdout)["items"]}


def _follow(settings_fix: str, config: dict[str, Any]) -> None:
    """Merge a fix of the form ``<yaml> in servewell.yaml`` into ``config``."""
    text = settings_fix.split(IN_FILE)[0]
    _merge(config, yaml.safe_load(text))


def _merge(into: dict[str, Any], given: dict[str, Any]) -> None:
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.mark.slow
def test_a_bare_server_fails_and_passes_once_the_fixes_are_followed(
    invoke: Invoke, home: Path, tmp_path: Path
) -> None:
    assert invoke("demo").exit_code == 0
    with serve_process(home, "--no-auth") as (url, _):
        bare = invoke("doctor", "--url", url, "--json")
        table = invoke("doctor", "--url", url)
    assert bare.exit_code == 7, bare.stdout
    assert table.exit_code == 7
    assert "servewell loadtest" in table.stdout
    items = _items(bare)
    for failing in ("security: auth", "rate limiting", "load testing"):
        assert items[failing]["status"] == "fail", items[failing]
        assert items[failing]["fix"], failing
    assert "--no-auth" in items["security: auth"]["fix"]
    assert items["load testing"]["fix"].startswith(
        f"servewell loadtest {url} --model breast-cancer"
    )

    config: dict[str, Any] = {}
    for fix in (items["monitoring: alert rules"]["fix"], items["timeouts and fallbacks"]["fix"]):
        _follow(fix, config)
    _follow("rate_limits: {default_rate: 600/minute} in servewell.yaml", config)
    (tmp_path / "servewell.yaml").write_text(yaml.safe_dump(config))
    created = invoke(
        "keys", "create", "--name", "app", "--scopes", "predict",
        "--models", "breast-cancer", "--rate", "100/second", "--json",
    )  # fmt: skip
    token = json.loads(created.stdout)["key"]
    services = build_services(Settings(home=home))
    try:  # as `servewell loadtest` records a passing run
        LoadTestStore(services.registry).record(
            "breast-cancer", 1, passed=True, slo="p99<50ms,errors<0.1%", summary={}
        )
    finally:
        services.close()

    with serve_process(home) as (url, _):
        fixed = invoke("doctor", "--url", url, "--api-key", token, "--json")
    assert fixed.exit_code == 0, fixed.stdout
    statuses = {item: found["status"] for item, found in _items(fixed).items()}
    assert "fail" not in statuses.values()
    for passing in ("security: auth", "rate limiting", "load testing", "metrics", "health checks"):
        assert statuses[passing] == "pass", passing
