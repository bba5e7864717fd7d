"""``servewell train`` and ``servewell evaluate`` end to end, on files, through the registry."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FAST = """
name: clicks
target: clicked
estimator: {kind: logistic}
checks: {latency_rows: 10}
features:
  derived:
    - {name: click_rate, ratio: [clicks, impressions]}
    - {name: visit, datetime: timestamp, parts: [hour]}
register: {alias: production}
"""


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = 300
    impressions = rng.integers(1, 40, rows)
    clicks = rng.binomial(impressions, rng.uniform(0, 0.3, rows))
    stamps = pd.Timestamp("2024-05-01") + pd.to_timedelta(rng.uniform(0, 9, rows), unit="D")
    frame = pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%S"),
            "device": rng.choice(["mobile", "desktop"], rows),
            "impressions": impressions,
            "clicks": clicks,
            "clicked": (clicks / impressions + rng.normal(0, 0.05, rows) > 0.15).astype(int),
        }
    )
    path = tmp_path / "clicks.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(FAST)
    return path


def test_train_registers_and_writes_the_report(invoke, data_file, pipeline_file, tmp_path) -> None:
    result = invoke(
        "train",
        str(data_file),
        "--config",
        str(pipeline_file),
        "--report",
        str(tmp_path / "report"),
    )
    assert result.exit_code == 0, result.output
    for stage in (
        "load",
        "clean",
        "features",
        "split",
        "train",
        "validate",
        "checks",
        "gate",
        "register",
    ):
        assert f"✓ {stage}" in result.stdout
    assert "registered clicks@1 with alias production" in result.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["version"] == {"name": "clicks", "version": 1}
    shown = json.loads(invoke("models", "list", "clicks", "--json").stdout)
    assert len(shown) == 1


def test_failed_gate_exits_non_zero_and_registers_nothing(
    invoke, registry_state, data_file, pipeline_file, tmp_path
) -> None:
    pipeline_file.write_text(FAST + "gate: {min_accuracy: 0.9999}\n")
    before = registry_state()
    result = invoke(
        "train",
        str(data_file),
        "--config",
        str(pipeline_file),
        "--report",
        str(tmp_path / "report"),
    )
    assert result.exit_code == 5
    assert "quality gate failed, nothing registered: accuracy" in result.stderr
    assert "✗ gate" in result.stdout
    assert "✓ gate" not in result.stdout
    assert "✓ checks" in result.stdout  # the stages before it passed
    assert registry_state() == before
    assert json.loads((tmp_path / "report" / "report.json").read_text())["passed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nope"], "no target column 'nope'"),
        (["--target", "clicked", "--estimator", "svm"], "estimator.kind"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    invoke, registry_state, data_file, args, message
) -> None:
    before = registry_state()
    result = invoke("train", str(data_file), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert registry_state() == before


def test_evaluate_compares_two_versions(invoke, data_file, pipeline_file) -> None:
    assert invoke("train", str(data_file), "--config", str(pipeline_file)).exit_code == 0
    assert (
        invoke(
            "train", str(data_file), "--config", str(pipeline_file), "--estimator", "random_forest"
        ).exit_code
        == 0
    )
    result = invoke(
        "evaluate",
        "clicks@1",
        str(data_file),
        "--target",
        "clicked",
        "--compare",
        "clicks@2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == {"clicks@1", "clicks@2"}
    assert figures["clicks@1"]["rows"] == 300
    assert 0.5 < figures["clicks@2"]["metrics"]["accuracy"] <= 1.0
    table = invoke(
        "evaluate", "clicks@1", str(data_file), "--target", "clicked", "--compare", "clicks@2"
    )
    assert "change" in table.stdout


def test_the_default_estimator_trains_a_plain_5000_row_table(invoke, tmp_path) -> None:
    from training_tables import plain

    path = tmp_path / "plain.csv"
    plain(5000).to_csv(path, index=False)
    result = invoke("train", str(path), "--target", "y")
    assert result.exit_code == 0, result.output
    assert "registered y@1" in result.stdout
    shown = json.loads(invoke("models", "show", "y@1", "--json").stdout)
    assert shown["params"]["estimator"] == "gradient_boosting"


def test_another_estimator_than_the_files_drops_its_parameters(invoke, data_file, tmp_path) -> None:
    pipeline = tmp_path / "mlp.yaml"
    pipeline.write_text(
        "target: clicked\nestimator: {kind: mlp, params: {hidden_layer_sizes: [8]}}\n"
        "checks: {latency_rows: 10}\n"
    )
    result = invoke(
        "train", str(data_file), "--config", str(pipeline), "--estimator", "random_forest"
    )
    assert result.exit_code == 0, result.output
    assert "estimator.params of" in result.stdout
    assert "are for mlp; random_forest uses its defaults" in result.stdout
