"""The checks a careful reviewer makes before trusting a validation score.

Each returns a :class:`Check` that passes or warns, with the figures behind it; the
gate decides whether a warning blocks registration (``gate.block_on_warnings``).
"""

from __future__ import annotations

import pickle
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from servewell.core.task import Task
from servewell.stats import ClassificationMetrics, lookup_score, majority_baseline
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


def check_overfitting(
    train_score: float, val_score: float, metric: str, config: ChecksConfig
) -> Check:
    gap = train_score - val_score
    figures = {"metric": metric, "train": train_score, "validation": val_score, "gap": gap}
    text = f"{metric} {train_score:.3f} on training rows vs {val_score:.3f} on validation"
    if gap > config.max_overfit_gap:
        return Check(
            "overfitting", "warn", f"{text}: a gap of {gap:.3f} > {config.max_overfit_gap}", figures
        )
    return Check("overfitting", "pass", f"{text} (gap {gap:.3f})", figures)


def check_leakage(
    train: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    validation: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    kinds: dict[str, Literal["numeric", "categorical", "datetime"]],
    task: Task,
    config: ChecksConfig,
) -> Check:
    """One feature that predicts the target almost alone; validation rows seen in training."""
    (x_train, y_train), (x_val, y_val) = train, validation
    baseline = majority_baseline(y_val)[1] if task == "classification" else 0.0
    scores: list[dict[str, Any]] = []
    for name, kind in kinds.items():
        if kind != "numeric" and kind != "categorical":
            continue
        value = lookup_score(
            x_train[name].to_numpy(), y_train, x_val[name].to_numpy(), y_val, kind=kind, task=task
        )
        skill = (value - baseline) / (1 - baseline) if baseline < 1 else 0.0
        scores.append({"column": name, "score": value, "skill": skill})
    scores.sort(key=lambda s: -s["skill"])
    suspects = [s for s in scores if s["skill"] >= config.leakage_skill]
    overlap = _overlap_rows(x_train, x_val)
    figures = {"features": scores, "overlap_rows": overlap, "validation_rows": len(x_val)}
    problems = [
        f"'{s['column']}' alone predicts the target ({_what(task)} {s['score']:.3f}); "
        "is it known at prediction time?"
        for s in suspects
    ]
    if overlap:
        problems.append(
            f"{overlap} validation row(s) ({overlap / len(x_val):.1%}) also appear "
            "in training, which inflates the validation score"
        )
    if problems:
        return Check("leakage", "warn", "; ".join(problems), figures)
    best = (
        f"; strongest single feature '{scores[0]['column']}' ({_what(task)} "
        f"{scores[0]['score']:.3f})"
        if scores
        else ""
    )
    return Check(
        "leakage",
        "pass",
        f"no single feature predicts the target alone, no validation row appears in training{best}",
        figures,
    )


def _what(task: str) -> str:
    return "accuracy" if task == "classification" else "R²"


def _overlap_rows(x_train: pd.DataFrame, x_val: pd.DataFrame) -> int:
    seen = set(pd.util.hash_pandas_object(x_train, index=False).tolist())
    return int(sum(h in seen for h in pd.util.hash_pandas_object(x_val, index=False).tolist()))


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
