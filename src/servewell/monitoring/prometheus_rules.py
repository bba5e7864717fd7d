"""servewell's alert rules as Prometheus alerting rules, for teams with Alertmanager.

What Prometheus can compute from servewell's ``/metrics`` it computes itself, over all
replicas and workers: ``error_rate`` (5xx answers of ``servewell_requests_total``) and
the latency quantiles (``servewell_request_duration_seconds``' buckets, as
``histogram_quantile`` estimates them), on the rule's window. Everything else (quality,
drift, label coverage) only servewell computes: those rules watch
``servewell_monitor_value{rule,model,metric}``, the value the rule's last evaluation
found. ``for`` carries over; ``clear_for`` becomes ``keep_firing_for`` (Prometheus'
pending state still resets at the first good evaluation, servewell's does not). A window
of rows has no Prometheus equivalent: its error and latency rules use
:data:`ROWS_WINDOW_STAND_IN`.
"""

from __future__ import annotations

from typing import Any

from servewell.settings.monitoring import AlertRule, MonitoringSettings

#: The range used for an error or latency rule whose window is a row count.
ROWS_WINDOW_STAND_IN = "1h"
_QUANTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95, "p99_latency_ms": 0.99}


def prometheus_rules(settings: MonitoringSettings) -> dict[str, Any]:
    """A Prometheus rule file (as a dict to dump as YAML) with one alert per rule."""
    return {
        "groups": [
            {
                "name": "servewell",
                "rules": [_alert(rule, settings.clear_for_s(rule)) for rule in settings.alerts],
            }
        ]
    }


def _alert(rule: AlertRule, clear_for_s: float) -> dict[str, Any]:
    found: dict[str, Any] = {
        "alert": rule.exported_name,
        "expr": f"{expression(rule)} {rule.op} {rule.threshold!r}",
    }
    if rule.for_s:
        found["for"] = duration(rule.for_s)
    if clear_for_s:
        found["keep_firing_for"] = duration(clear_for_s)
    found["labels"] = {"severity": rule.severity, "rule": rule.name, "model": rule.model}
    found["annotations"] = {
        "summary": f"{rule.model}: {rule.metric} {rule.op} {rule.threshold} over {rule.window}",
        "action": rule.action,
    }
    return found


def expression(rule: AlertRule) -> str:
    """The PromQL whose value the rule compares with its threshold."""
    model = _quoted(rule.model)
    name = rule.metric.name
    seconds = rule.window.seconds
    window = ROWS_WINDOW_STAND_IN if seconds is None else duration(seconds)
    if name == "error_rate":
        requests = f"servewell_requests_total{{model={model}"
        return (
            f'sum(rate({requests},status=~"5.."}}[{window}])) / sum(rate({requests}}}[{window}]))'
        )
    if name in _QUANTILES:
        buckets = f"servewell_request_duration_seconds_bucket{{model={model}}}"
        return (
            f"histogram_quantile({_QUANTILES[name]}, sum by (le) (rate({buckets}[{window}]))) "
            "* 1000"
        )
    labels = f"rule={_quoted(rule.name)},model={model},metric={_quoted(str(rule.metric))}"
    return f"servewell_monitor_value{{{labels}}}"


def duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds, or milliseconds."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
