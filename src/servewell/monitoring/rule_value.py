"""An alert rule's value: its metric read off a window's report (the figures
``servewell monitor`` shows), None when the window does not have it.

``error_rate`` is always None here: the prediction log holds answers only
(:data:`~servewell.monitoring.summary.ERRORS_NOT_LOGGED`); Prometheus computes it from
``/metrics`` with the rule ``servewell alerts export-prometheus`` writes.
"""

from __future__ import annotations

import math
from typing import Any

from servewell.monitoring.summary import GroupReport
from servewell.settings.monitoring import Metric

#: The quality figure behind each plain quality metric.
_QUALITY = {
    "accuracy": "accuracy",
    "macro_f1": "macro_f1",
    "roc_auc": "roc_auc",
    "mae": "mae",
    "rmse": "rmse",
    "r2": "r2",
}
PER_CLASS = ("precision", "recall", "f1")
_LATENCY = {"p50_latency_ms": "p50", "p95_latency_ms": "p95", "p99_latency_ms": "p99"}
#: The metrics servewell evaluates itself (every one but ``error_rate``).
EVALUATED = frozenset(
    (*_QUALITY, *_LATENCY, "label_coverage", "prediction_drift", "drift_psi", *PER_CLASS)
)


def rule_value(group: GroupReport | None, metric: Metric) -> float | None:
    """``metric`` of ``group`` (None: no rows in the window, or not this figure)."""
    if group is None or not group.window.logged:
        return None
    name = metric.name
    if name in _QUALITY:
        return _number((group.quality or {}).get(_QUALITY[name]))
    if name in _LATENCY:
        latency = group.window.latency_percentiles()
        return None if latency is None else latency[_LATENCY[name]]
    if name == "label_coverage":
        return group.label_coverage
    if name == "prediction_drift":
        return None if group.prediction_drift is None else _number(group.prediction_drift.psi)
    if name == "drift_psi":
        found = next((f for f in group.drift if f.name == metric.argument), None)
        return None if found is None else _number(found.psi)
    if name in PER_CLASS:
        per_class = (group.quality or {}).get("per_class") or {}
        figures = next((v for k, v in per_class.items() if str(k) == metric.argument), None)
        return None if figures is None else _number(figures.get(name))
    return None  # error_rate: not in the log


def _number(value: Any) -> float | None:
    """A figure as a float; None for a missing one or NaN (no value is no sample)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
