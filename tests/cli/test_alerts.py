"""``servewell alerts``: the rules with their stored state and events, and
``export-prometheus``, whose rules ``promtool check rules`` accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

from monitored_models import write_logged
from servewell.bootstrap import build_services
from servewell.monitoring.evaluator import AlertEvaluator
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from servewell.settings import load_settings
from serving_models import register_python

Invoke = Callable[..., Result]

RULES = {
    "monitoring": {
        "alerts": [
            {"name": "acc-drop", "model": "clicks", "metric": "accuracy", "op": "<",
             "threshold": 0.9, "window": "1h", "for": "10m", "action": "rollback"},
            {"name": "errors", "model": "clicks", "metric": "error_rate", "op": ">",
             "threshold": 0.05, "window": "5m", "for": "2m"},
            {"name": "slow", "model": "clicks", "metric": "p99_latency_ms", "op": ">=",
             "threshold": 250, "window": "1000"},
            {"name": "drift.amount", "model": "other", "metric": "drift_psi[amount]",
             "op": ">", "threshold": 0.2, "window": "1d", "clear_for": "30m"},
        ]
    }
}  # fmt: skip


@pytest.fixture
def configured(home: Path, tmp_path: Path) -> Path:
    """servewell.yaml with four rules; ``clicks`` registered, one bad window evaluated."""
    (tmp_path / "servewell.yaml").write_text(yaml.safe_dump(RULES), encoding="utf-8")
    services = build_services(load_settings())
    try:
        register_python(services, "clicks", "labels", signature="label.json")
        now = time.time()
        rows = [
            PredictionRow(now - 60 + i, f"r{i}", "clicks", 1, None, None, 3.0, False,
                          json.dumps({"label": [i % 2]}), json.dumps({"x": [1.0]}))
            for i in range(10)
        ]  # fmt: skip
        write_logged(services, rows)  # rows and window sketches, as a server writes them
        store = SqlPredictionStore(services.registry)
        store.label("clicks", [(f"r{i}", 1) for i in range(10)])
        AlertEvaluator(services, services.settings.monitoring).evaluate(now)
    finally:
        services.close()
    return tmp_path


def test_the_listing_shows_each_rule_with_its_state_and_events(
    invoke: Invoke, configured: Path
) -> None:
    data = json.loads(invoke("alerts", "--json").stdout)
    rules = {rule["name"]: rule for rule in data["rules"]}
    assert set(rules) == {"acc-drop", "errors", "slow", "drift.amount"}
    assert rules["acc-drop"]["state"] == "pending"
    assert rules["acc-drop"]["value"] == 0.5
    assert rules["acc-drop"]["version"] == 1
    assert rules["errors"]["note"].startswith("not in the prediction log")
    assert rules["acc-drop"]["note"] is None
    assert rules["errors"]["state"] == "inactive"
    assert rules["errors"]["value"] is None
    assert rules["slow"]["value"] == pytest.approx(3.0)
    assert [event["kind"] for event in data["events"]] == ["pending"]
    table = invoke("alerts", "--model", "clicks")
    assert table.exit_code == 0
    assert "acc-drop" in table.stdout
    assert "drift.amount" not in table.stdout
    assert "pending" in table.stdout


def test_an_unknown_model_is_one_line_and_exit_4(invoke: Invoke, configured: Path) -> None:
    result = invoke("alerts", "--model", "nope")
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert "nope" in result.stderr


def test_export_prometheus_writes_a_rule_per_alert(invoke: Invoke, configured: Path) -> None:
    out = configured / "rules.yml"
    assert invoke("alerts", "export-prometheus", "--output", str(out)).exit_code == 0
    [group] = yaml.safe_load(out.read_text())["groups"]
    rules = {rule["labels"]["rule"]: rule for rule in group["rules"]}
    assert rules["acc-drop"]["alert"] == "servewell_acc_drop"
    assert rules["acc-drop"]["expr"] == (
        'servewell_monitor_value{rule="acc-drop",model="clicks",metric="accuracy"} < 0.9'
    )
    assert rules["acc-drop"]["for"] == "600s"
    assert rules["errors"]["expr"] == (
        'sum(rate(servewell_requests_total{model="clicks",status=~"5.."}[300s])) / '
        'sum(rate(servewell_requests_total{model="clicks"}[300s])) > 0.05'
    )
    assert rules["slow"]["expr"].startswith("histogram_quantile(0.99, sum by (le) (rate(")
    assert "[1h]" in rules["slow"]["expr"]  # a window of rows: Prometheus has none
    assert rules["drift.amount"]["keep_firing_for"] == "1800s"
    assert invoke("alerts", "export-prometheus").stdout == out.read_text()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_exported_rules_pass_promtool(invoke: Invoke, configured: Path) -> None:
    out = configured / "rules.yml"
    invoke("alerts", "export-prometheus", "--output", str(out))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(out)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout
