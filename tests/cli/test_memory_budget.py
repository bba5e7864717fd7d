"""The commands that make servers load a version (``alias set``, ``rollback``,
``traffic split``, ``traffic shadow``) refuse, with exit code 10 and nothing stored, a
change whose versions would not fit in the servers' memory budget beside the ones
served now (the registry's estimates, ``server.memory_budget_mb`` from the settings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from servewell.bootstrap import build_services
from servewell.settings import Settings

Invoke = Callable[..., Result]
MB = 2**20


@pytest.fixture
def fraud(
    invoke: Invoke, model_files: dict[str, Path], home: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """'fraud' v1 (30 MB measured, production), v2 (60 MB), v3 (80 MB); budget 100 MB."""
    for _ in range(3):
        assert invoke("register", str(model_files["onnx"]), "--name", "fraud").exit_code == 0
    assert invoke("alias", "set", "fraud", "production", "1").exit_code == 0
    services = build_services(Settings(home=home))
    try:
        for version, size_mb in ((1, 30), (2, 60), (3, 80)):
            services.registry.record_memory("fraud", version, size_mb * MB)
    finally:
        services.close()
    monkeypatch.setenv("SERVEWELL_SERVER__MEMORY_BUDGET_MB", "100")
    return "fraud"


def _production(invoke: Invoke) -> int:
    shown = invoke("models", "list", "fraud", "--json")
    assert shown.exit_code == 0, shown.output
    return next(v["version"] for v in json.loads(shown.stdout) if "production" in v["aliases"])


def test_an_alias_move_that_would_not_fit_exits_10_and_moves_nothing(
    invoke: Invoke, fraud: str
) -> None:
    assert invoke("alias", "set", fraud, "production", "2").exit_code == 0  # 30 + 60 MB
    refused = invoke("alias", "set", fraud, "production", "3")  # 60 + 80 MB
    assert refused.exit_code == 10, refused.output
    assert refused.stderr.strip() == (
        "error: fraud@3 needs about 80.0 MB beside the 60.0 MB of the versions served: over "
        "the memory budget of 100.0 MB (server.memory_budget_mb); nothing was changed"
    )
    assert _production(invoke) == 2
    assert invoke("rollback", fraud).exit_code == 0  # back to v1: 60 + 30 MB
    assert _production(invoke) == 1
    assert invoke("alias", "set", fraud, "production", "1").exit_code == 0  # loads nothing


def test_a_rollback_that_would_not_fit_exits_10(invoke: Invoke, fraud: str) -> None:
    with pytest.MonkeyPatch.context() as patch:  # a bigger budget for the moves before
        patch.setenv("SERVEWELL_SERVER__MEMORY_BUDGET_MB", "200")
        assert invoke("alias", "set", fraud, "production", "3").exit_code == 0
        assert invoke("alias", "set", fraud, "production", "2").exit_code == 0
    refused = invoke("rollback", fraud)  # to v3: 60 + 80 MB
    assert refused.exit_code == 10, refused.output
    assert _production(invoke) == 2


def test_a_split_or_shadow_that_would_not_fit_exits_10_and_stores_nothing(
    invoke: Invoke, fraud: str
) -> None:
    split = invoke("traffic", "split", fraud, "1=90", "3=10")  # 30 + 80 MB
    assert split.exit_code == 10, split.output
    assert "fraud@3 needs about 80.0 MB beside the 30.0 MB" in split.stderr
    shadow = invoke("traffic", "shadow", fraud, "3", "--percent", "10")
    assert shadow.exit_code == 10, shadow.output
    assert json.loads(invoke("traffic", "show", fraud, "--json").stdout) is None
    assert invoke("traffic", "split", fraud, "1=50", "2=50").exit_code == 0  # 30 + 60 MB
    assert invoke("traffic", "shadow", fraud, "3", "--percent", "10").exit_code == 10
    assert invoke("traffic", "shadow", fraud, "--off").exit_code == 0  # loads nothing


def test_only_the_served_models_count(
    invoke: Invoke, fraud: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVEWELL_SERVER__MODELS", '["other"]')  # fraud is not served
    assert invoke("alias", "set", fraud, "production", "3").exit_code == 0


def test_a_rollout_whose_candidate_would_not_fit_exits_10_and_starts_nothing(
    invoke: Invoke, fraud: str
) -> None:
    refused = invoke("rollout", "start", fraud, "--to", "3", "--steps", "10,100", "--every", "1m")
    assert refused.exit_code == 10, refused.output  # 30 + 80 MB
    assert "fraud@3 needs about 80.0 MB beside the 30.0 MB" in refused.stderr
    assert invoke("rollout", "status", fraud).exit_code == 4  # none was started
    assert json.loads(invoke("traffic", "show", fraud, "--json").stdout) is None
