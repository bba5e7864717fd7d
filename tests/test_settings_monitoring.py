"""The monitoring section and models.<name>.monitoring: the issue's shape parses into
typed parts; a wrong rule is one line naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.errors import InvalidConfig
from servewell.settings import load_settings
from servewell.settings.monitoring import Metric, parse_duration_s

PINNED = """\
models:
  fraud:
    monitoring: {sample_rate: 1.0, log_inputs: full}     # full | hash | none
monitoring:
  buffer_size: 100000
  flush_interval_s: 1
  evaluation_interval_s: 10          # how often alert rules are evaluated (also on new labels)
  retention_days: 30
  webhooks: [{url: "https://ops.example/hook", timeout_s: 5, max_attempts: 5}]
  alerts:
    - {name: acc-drop, model: fraud, metric: accuracy, op: "<", threshold: 0.9, window: 1h, for: 10m, severity: page, action: rollback}
"""  # noqa: E501


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVEWELL_CONFIG", raising=False)
    return tmp_path


def test_the_pinned_shape_parses(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text(PINNED)
    settings = load_settings()
    monitoring = settings.monitoring
    assert (monitoring.buffer_size, monitoring.flush_interval_s) == (100_000, 1.0)
    assert (monitoring.evaluation_interval_s, monitoring.retention_days) == (10.0, 30.0)
    [hook] = monitoring.webhooks
    assert (hook.url, hook.timeout_s, hook.max_attempts) == ("https://ops.example/hook", 5, 5)
    [rule] = monitoring.alerts
    assert (rule.name, rule.model, rule.metric, rule.op) == (
        "acc-drop",
        "fraud",
        Metric("accuracy"),
        "<",
    )
    assert (rule.threshold, rule.window.seconds, rule.window.rows) == (0.9, 3600.0, None)
    assert (rule.for_s, rule.severity, rule.action) == (600.0, "page", "rollback")
    assert monitoring.clear_for_s(rule) == 20.0  # two evaluation intervals
    fraud = settings.model("fraud").monitoring
    assert (fraud.sample_rate, fraud.log_inputs) == (1.0, "full")
    other = settings.model("other").monitoring
    assert (other.sample_rate, other.log_inputs) == (1.0, None)


def test_defaults_without_a_monitoring_section(workdir: Path) -> None:
    monitoring = load_settings().monitoring
    assert monitoring.rollback_cooldown_s == 1800.0
    assert monitoring.alerts == []
    assert monitoring.webhooks == []
    assert monitoring.buffer_size == 100_000
    assert (monitoring.retention_days, monitoring.store) == (30.0, "database")
    assert (monitoring.parquet_file_rows, monitoring.parquet_file_age_s) == (100_000, 60.0)


def test_the_environment_sets_a_field(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWELL_MONITORING__BUFFER_SIZE", "500")
    monkeypatch.setenv("SERVEWELL_MODELS__FRAUD__MONITORING__SAMPLE_RATE", "0.25")
    settings = load_settings()
    assert settings.monitoring.buffer_size == 500
    assert settings.model("fraud").monitoring.sample_rate == 0.25


def _rule(**change: object) -> str:
    rule = {"name": "r", "model": "fraud", "metric": "accuracy", "op": "<", "threshold": 0.9,
            "window": "1h", "for": "10m"} | change  # fmt: skip
    fields = ", ".join(
        f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in rule.items()
    )
    return f"monitoring:\n  alerts:\n    - {{{fields}}}\n"


@pytest.mark.parametrize(
    ("change", "window", "for_s"),
    [
        ({"window": "1d"}, (86_400.0, None), 600.0),
        ({"window": "1000"}, (None, 1000), 600.0),
        ({"window": 1000}, (None, 1000), 600.0),
        ({"window": "1h30m", "for": "90s"}, (5400.0, None), 90.0),
        ({"for": "0"}, (3600.0, None), 0.0),
        ({"for": 0}, (3600.0, None), 0.0),
    ],
)
def test_windows_and_durations(workdir: Path, change: dict, window: tuple, for_s: float) -> None:
    (workdir / "servewell.yaml").write_text(_rule(**change))
    [rule] = load_settings().monitoring.alerts
    assert (rule.window.seconds, rule.window.rows) == window
    assert rule.for_s == for_s


@pytest.mark.parametrize(
    ("metric", "parsed"),
    [
        ("recall[fraud]", Metric("recall", "fraud")),
        ("drift_psi[amount]", Metric("drift_psi", "amount")),
        ("p99_latency_ms", Metric("p99_latency_ms")),
        ("label_coverage", Metric("label_coverage")),
    ],
)
def test_metrics_with_and_without_an_argument(workdir: Path, metric: str, parsed: Metric) -> None:
    (workdir / "servewell.yaml").write_text(_rule(metric=metric))
    [rule] = load_settings().monitoring.alerts
    assert rule.metric == parsed
    assert str(rule.metric) == metric


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"metric": "acuracy"}, "unknown metric 'acuracy'; known: accuracy,"),
        ({"metric": "recall"}, "metric 'recall' needs a class or feature: recall[<name>]"),
        ({"metric": "accuracy[x]"}, "unknown metric 'accuracy[x]'"),
        ({"op": "=<"}, "monitoring.alerts.0.op"),
        ({"window": "1x"}, "window '1x': give a duration (30m, 1h, 1d) or a row count (1000)"),
        ({"window": "0"}, "at least 1 row"),
        ({"for": "10"}, "'10' is not a duration: give a number and a unit"),
        ({"for": 10}, "10 has no unit: write e.g. 10s or 10m"),
        ({"for": "ten minutes"}, "is not a duration"),
        ({"clear_for": "-1m"}, "is not a duration"),
        ({"name": "acc drop"}, "may hold only letters, digits"),
        ({"action": "page"}, "monitoring.alerts.0.action"),
        ({"threshold": "high"}, "monitoring.alerts.0.threshold"),
        ({"severity": " "}, "must not be empty"),
        ({"sevrity": "page"}, "sevrity"),
    ],
)
def test_a_wrong_rule_is_one_line_naming_it(workdir: Path, change: dict, says: str) -> None:
    (workdir / "servewell.yaml").write_text(_rule(**change))
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert says in message


@pytest.mark.parametrize(
    ("yaml_text", "says"),
    [
        (_rule() + "    - {name: r, model: m, metric: accuracy, op: '<', threshold: 1}\n",
         "two alert rules are named 'r'"),
        (_rule(name="a.b") + "    - {name: a_b, model: m, metric: accuracy, op: '<', "
         "threshold: 1}\n",
         "alert rules 'a.b' and 'a_b' both export to Prometheus as servewell_a_b; rename one"),
        ("monitoring:\n  webhooks: [{url: 'ftp://x'}]\n", "must be an http:// or https:// URL"),
        ("monitoring:\n  webhooks: [{url: 'https://x', max_attempts: 0}]\n", "max_attempts"),
        ("monitoring:\n  webhooks: [{url: 'https://x', timeout_s: 1000000}]\n",
         "monitoring.webhooks.0.timeout_s"),
        ("monitoring:\n  buffer_size: 0\n", "monitoring.buffer_size"),
        ("monitoring:\n  rollback_cooldown_s: 30\n", "has no unit: write e.g. 30s or 30m"),
        ("monitoring:\n  retention_days: 0\n", "monitoring.retention_days"),
        ("monitoring:\n  store: s3\n", "monitoring.store"),
        ("monitoring:\n  parquet_file_rows: 0\n", "monitoring.parquet_file_rows"),
        ("monitoring:\n  parquet_file_age_s: -1\n", "monitoring.parquet_file_age_s"),
        ("models:\n  fraud:\n    monitoring: {sample_rate: 1.5}\n", "sample_rate"),
        ("models:\n  fraud:\n    monitoring: {log_inputs: all}\n", "log_inputs"),
    ],
)  # fmt: skip
def test_a_wrong_section_is_one_line_naming_it(workdir: Path, yaml_text: str, says: str) -> None:
    (workdir / "servewell.yaml").write_text(yaml_text)
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert len(str(caught.value).splitlines()) == 1
    assert says in str(caught.value)


def test_durations() -> None:
    assert parse_duration_s("250ms") == 0.25
    assert parse_duration_s("1w") == 604_800
    assert parse_duration_s("1d2h") == 93_600
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_s("1h-")
