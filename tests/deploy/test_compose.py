"""deploy/compose: the compose file passes the Compose specification's schema, the
Prometheus configuration and the exported alert rules pass promtool, and every metric
the Grafana dashboard queries is one a real server exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from deploy_tools import DEPLOY, ROOT, assert_servewell_command, find_tool, run_tool
from servewell.cli.app import app
from serving_models import build_adder_home, serve_process

COMPOSE = DEPLOY / "compose"
PROMETHEUS = COMPOSE / "prometheus"
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "servewell.json"
PROMTOOL_HINT = "apt-get install prometheus (.ci/run does)"
ADDER = {
    "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.0]},
        {"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [2.0]},
    ]
}


def _check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    checker = find_tool("check-jsonschema", "pip install check-jsonschema (the dev extra)")
    return subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = _check_compose(COMPOSE / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        "services:\n  web:\n    image: nginx\n    restart: sometimes-maybe\n    portz: []\n"
    )
    assert _check_compose(bad).returncode != 0


def test_the_stack_has_every_piece_and_no_secret() -> None:
    stack = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
    services = stack["services"]
    wanted = {"nginx", "servewell-1", "servewell-2", "worker", "migrate", "postgres", "redis"}
    assert wanted | {"prometheus", "grafana"} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["worker"]["command"][0] == "worker"
    assert_servewell_command(services["worker"]["command"])
    settings = yaml.safe_load((COMPOSE / "servewell.yaml").read_text(encoding="utf-8"))
    assert settings["jobs"]["executor"] == "celery"  # jobs go to the worker service
    text = (COMPOSE / "compose.yaml").read_text(encoding="utf-8")
    needed = set(re.findall(r"\$\{(\w+):\?", text))
    example = (COMPOSE / ".env.example").read_text(encoding="utf-8")
    assert needed == {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    assert needed <= {line.split("=")[0] for line in example.splitlines() if "=" in line}
    assert "deploy/compose/.env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_promtool_accepts_the_prometheus_configuration_and_rules() -> None:
    promtool = find_tool("promtool", PROMTOOL_HINT)
    run_tool(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    output = run_tool(promtool, "check", "rules", str(PROMETHEUS / "rules" / "servewell.yml"))
    assert "2 rules found" in output


def test_the_rules_are_what_servewell_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVEWELL_CONFIG", str(COMPOSE / "servewell.yaml"))
    monkeypatch.setenv("SERVEWELL_HOME", str(tmp_path))
    exported = tmp_path / "rules.yml"
    result = CliRunner().invoke(app, ["alerts", "export-prometheus", "--output", str(exported)])
    assert result.exit_code == 0, result.output
    committed = PROMETHEUS / "rules" / "servewell.yml"
    assert exported.read_text() == committed.read_text(), "export the rules again"


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    found += [item["query"] for item in dashboard["templating"]["list"]]
    return found


def _as_promql(expression: str) -> str:
    """Grafana's variables replaced as Grafana would, so promtool can parse it."""
    values = {"$__rate_interval": "1m", "$model": ".*", "$version": ".*"}
    for variable, value in values.items():
        expression = expression.replace(variable, value)
    label_values = re.fullmatch(r"label_values\((.+), \w+\)", expression)
    return label_values.group(1) if label_values else expression


def test_every_dashboard_query_is_promql(tmp_path: Path) -> None:
    promtool = find_tool("promtool", PROMTOOL_HINT)
    rules = [
        {"record": f"dashboard:q{i}", "expr": _as_promql(e)} for i, e in enumerate(_expressions())
    ]
    assert len(rules) >= 10
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_tool(promtool, "check", "rules", str(path))


@pytest.mark.slow
def test_every_metric_the_dashboard_reads_is_exported(tmp_path: Path) -> None:
    queried = {
        name for expression in _expressions() for name in re.findall(r"servewell_\w+", expression)
    }
    assert {"servewell_requests_total", "servewell_queue_depth_requests"} <= queried
    home = build_adder_home(tmp_path / "home")
    with serve_process(home, "--no-auth") as (url, _):
        for _ in range(2):  # the second is a cache hit
            response = httpx.post(f"{url}/v2/models/adder/infer", json=ADDER, timeout=30)
            assert response.status_code == 200, response.text
        bad = dict(ADDER, inputs=ADDER["inputs"][:1])  # y missing: a counted error
        assert httpx.post(f"{url}/v2/models/adder/infer", json=bad, timeout=30).status_code == 400
        exposition = httpx.get(f"{url}/metrics", timeout=30).text
    exported = set(re.findall(r"^(servewell_\w+)[{ ]", exposition, re.MULTILINE))
    assert queried - exported == set()
