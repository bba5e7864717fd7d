"""``servewell monitor``: the table, ``--json`` (every figure, each drift test's bins),
``--html`` (a page with plots), and one line for what cannot be done."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import Result

import monitored_models as monitored
from servewell.bootstrap import Services, build_services
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import PredictionRow
from servewell.settings import Settings

Invoke = Callable[..., Result]


@pytest.fixture(params=["database", "parquet"])
def logged(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """``loans`` trained, and 300 of its predictions logged, a third of them labelled, in
    each store (``monitor`` reads either through one interface)."""
    monkeypatch.setenv("SERVEWELL_MONITORING__STORE", request.param)  # for the command
    services = build_services(Settings(home=home))
    monitored.train(services, rows=1500)
    frame = monitored.loans(300, seed=5, shift=1.0)
    now = datetime.now(UTC).timestamp()
    rows = [
        PredictionRow(
            now - 300 + i,
            f"r{i}",
            monitored.MODEL,
            1,
            None,
            "web",
            1.0 + i % 10,
            False,
            json.dumps({"label": [int(late)], "probabilities": [[0.4, 0.6]]}),
            json.dumps({"amount": [amount], "income": [income], "plan": [plan]}),
        )
        for i, (amount, income, plan, late) in enumerate(frame.itertuples(index=False))
    ]
    monitored.write_logged(services, rows)
    open_prediction_store(services).label(
        monitored.MODEL, [(f"r{i}", int(frame["late"][i]) ^ (i % 5 == 0)) for i in range(0, 300, 3)]
    )
    yield services
    services.close()


def test_json_has_every_figure_and_each_tests_bins(invoke: Invoke, logged: Services) -> None:
    result = invoke("monitor", "loans", "--window", "1h", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["model"], report["window"], report["window_kind"]) == ("loans", "1h", "time")
    [group] = report["groups"]
    assert (group["version"], group["logged"], group["labelled"]) == (1, 300, 100)
    assert group["label_coverage"] == pytest.approx(1 / 3)
    assert group["quality"]["accuracy"] == pytest.approx(0.8)  # one label in five flipped
    assert set(group["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert "errors are not logged" in group["errors"]
    drift = {found["name"]: found for found in group["drift"]["features"]}
    assert drift["amount"]["drift"] is True
    assert drift["income"]["drift"] is False
    for test in drift["amount"]["tests"]:
        assert set(test) == {"test", "statistic", "p_value", "threshold", "drift", "bins"}
        assert len(test["bins"]) >= 9  # the inner edges (the fine ones for KS)
    assert "models.loans.monitoring.log_inputs" in group["drift"]["not_judged"]["plan"]  # text
    assert group["drift"]["prediction"]["name"] == "prediction"
    assert sum(part["logged"] for part in group["slices"]) == 300
    assert any(part["logged"] >= 100 for part in group["slices"])
    for part in group["slices"]:  # a slice's PSI only on enough rows to mean something
        psi = part["psi"]["amount"]
        assert psi > 0.1 if part["logged"] >= 100 else psi is None


def test_table_and_html_page(invoke: Invoke, logged: Services, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = invoke("monitor", "loans", "--window", "1d", "--html", str(page))
    assert result.exit_code == 0, result.output
    for shown in (
        "label coverage",
        "100 / 300",
        "accuracy",
        "latency p99",
        "amount",
        "psi",
        "drift",
        "not logged",
    ):
        assert shown in result.stdout
    html = page.read_text()
    assert html.startswith("<!doctype html>")
    assert html.count("<img") >= 4  # accuracy, drift, latency, predictions vs reference
    assert "loans@1" in html


def test_count_window_and_version(invoke: Invoke, logged: Services) -> None:
    report = json.loads(
        invoke("monitor", "loans", "--window", "30", "--version", "1", "--json").stdout
    )
    [group] = report["groups"]
    assert (report["window_kind"], group["logged"], group["labelled"]) == ("rows", 30, 10)


def test_a_model_without_reference_or_labels_says_so(
    invoke: Invoke, home: Path, tmp_path: Path
) -> None:
    from serving_models import register_adder

    services = build_services(Settings(home=home))
    register_adder(services, tmp_path)
    minute_ago = datetime.now(UTC).timestamp() - 60
    row = PredictionRow(
        minute_ago,
        "a",
        "adder",
        1,
        None,
        None,
        1.0,
        False,
        '{"sum": [[3.0]]}',
        '{"x": [[2.0]], "y": [[1.0]]}',
    )
    monitored.write_logged(services, [row])
    services.close()
    result = invoke("monitor", "adder")
    assert result.exit_code == 0, result.output
    assert "no training reference profile" in result.stdout
    assert "servewell train" in result.stdout
    assert "no labels for this window" in result.stdout
    empty = invoke("monitor", "adder", "--window", "10s", "--rescan")
    assert "no predictions of adder logged" in empty.stdout


@pytest.mark.parametrize(
    "window", ["1y", "1x", "0", "-5", "1h2", "soon", "99999999999999999999d", "9" * 30]
)
def test_a_bad_window_is_one_line_and_exit_2(invoke: Invoke, home: Path, window: str) -> None:
    result = invoke("monitor", "loans", "--window", window)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "--window" in result.stderr


def test_an_unknown_model_or_version_is_one_line(invoke: Invoke, logged: Services) -> None:
    assert invoke("monitor", "nobody").exit_code != 0
    missing = invoke("monitor", "loans", "--version", "7")
    assert missing.exit_code != 0
    assert missing.stderr.count("\n") == 1


def test_backfill_rewrites_nothing_the_live_sketcher_got_right(
    invoke: Invoke, logged: Services
) -> None:
    result = invoke("monitor", "loans", "--backfill", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["spans"] > 0
    assert 0 < done["rows"] < 300  # the last two minutes are the live sketcher's alone
    assert done["rebuilt"] == 0  # in either store, its buckets equal the rows'
    missing = invoke("monitor", "nobody", "--backfill")
    assert missing.exit_code == 4
    assert missing.stderr.count("\n") == 1
