"""The checks a careful reviewer makes before trusting a validation score.

Each returns a :class:`Check` that passes or warns, with the figures behind it; the
gate decides whether a warning blocks registration (``gate.block_on_warnings``). The
leakage check, which scores every feature alone, is :mod:`servewell.training.leakage`;
the overfitting check, :mod:`servewell.training.overfitting`.
"""

from __future__ import annotations

import pickle
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from servewell.stats import ClassificationMetrics, majority_baseline
from servewell.training.config import ChecksConfig
from servewell.training.fit import Trace

Status = Literal["pass", "warn"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "figures": self.figures,
        }


def check_imbalance(
    metrics: ClassificationMetrics, y_val: np.ndarray[Any, Any], config: ChecksConfig
) -> Check:
    """Accuracy against always predicting the majority class, and each class's recall."""
    label, baseline = majority_baseline(y_val)
    lift = metrics.accuracy - baseline
    recalls = {name: m.recall for name, m in metrics.per_class.items()}
    low = {name: r for name, r in recalls.items() if r < config.min_class_recall}
    figures = {
        "accuracy": metrics.accuracy,
        "baseline": baseline,
        "majority_class": label,
        "lift": lift,
        "recall": recalls,
    }
    text = (
        f"accuracy {metrics.accuracy:.3f} vs {baseline:.3f} for always predicting "
        f"'{label}' ({lift:+.3f})"
    )
    problems = []
    if lift < config.baseline_margin:
        problems.append(
            f"accuracy beats the majority-class baseline by less than {config.baseline_margin}"
        )
    problems += [f"recall of class '{n}' is only {r:.3f}" for n, r in low.items()]
    if problems:
        return Check("imbalance", "warn", f"{text}: {'; '.join(problems)}", figures)
    return Check(
        "imbalance", "pass", f"{text}; every class recall ≥ {config.min_class_recall}", figures
    )


def check_latency(model: Any, rows: pd.DataFrame, config: ChecksConfig) -> Check:
    """p50/p99 of single-row predictions in this process, and the pickled model's size."""
    size_bytes = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    singles = [rows.iloc[[i % len(rows)]] for i in range(config.latency_rows)]
    timings = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.predict(singles[0])
        for row in singles:
            start = time.perf_counter()
            model.predict(row)
            timings.append((time.perf_counter() - start) * 1000)
    p50, p99 = (float(v) for v in np.percentile(timings, [50, 99]))
    figures = {"p50_ms": p50, "p99_ms": p99, "size_bytes": size_bytes, "rows": len(timings)}
    return Check(
        "latency",
        "pass",
        f"single-row prediction p50 {p50:.2f} ms, p99 {p99:.2f} ms in-process; "
        f"model {size_bytes / 1024:.0f} KiB",
        figures,
    )


def check_convergence(trace: Trace) -> Check | None:
    if trace.converged is None:
        return None
    figures = {"epochs": len(trace.epochs), "converged": trace.converged}
    if trace.converged:
        return Check("convergence", "pass", trace.note or "converged", figures)
    return Check("convergence", "warn", trace.note, figures)
