"""The stages of a training run, one function each: do the work, and say what happened
in the stage's summary (rows x columns in and out, a line per finding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.task import Task
from servewell.errors import InvalidData
from servewell.stats import ClassificationMetrics
from servewell.training.checks import (
    Check,
    check_convergence,
    check_imbalance,
    check_latency,
)
from servewell.training.cleaning import CleaningReport, clean
from servewell.training.config import PipelineConfig
from servewell.training.data import Schema, infer_schema, require_column
from servewell.training.estimators import make_estimator
from servewell.training.evaluate import Metrics, Predictions, predict, score
from servewell.training.features import FeaturePlan, build_preprocessor, plan_features
from servewell.training.fit import Trace, fit_model
from servewell.training.gate import GateResult, evaluate_gate
from servewell.training.leakage import FeatureKind, check_leakage
from servewell.training.overfitting import check_overfitting
from servewell.training.progress import StageLog
from servewell.training.split import Split, cross_validate, split_rows
from servewell.training.target import class_labels, infer_task


@dataclass(frozen=True, slots=True)
class Fitted:
    model: Any
    trace: Trace
    cross_validation: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Scores:
    """Predictions and metrics on both sides of the split."""

    validation: Predictions
    training: Predictions
    metrics: Metrics
    train_metrics: Metrics


def load(
    log: StageLog, frame: pd.DataFrame, target: str, config: PipelineConfig
) -> tuple[Schema, Task]:
    """What each column holds, and what predicting the target is."""
    with log.stage("load") as summary:
        require_column(frame, target)
        schema = infer_schema(frame, target, config.columns)
        task = infer_task(frame[target], config)
        summary.rows_in, summary.columns_in = frame.shape
        summary.rows_out, summary.columns_out = frame.shape
        summary.lines = [_describe_column(c) for c in schema.to_dict()]
        summary.lines.append(f"target `{target}`: {task}")
    return schema, task


def clean_rows(
    log: StageLog,
    frame: pd.DataFrame,
    schema: Schema,
    target: str,
    task: Task,
    config: PipelineConfig,
) -> tuple[pd.DataFrame, CleaningReport, tuple[Any, ...] | None]:
    """The cleaned table, what cleaning did, and (classifying) the classes."""
    with log.stage("clean") as summary:
        cleaned, report = clean(frame, schema, target, task, config.cleaning)
        labels = class_labels(cleaned[target], target, task)
        summary.rows_in, summary.columns_in = frame.shape
        summary.rows_out, summary.columns_out = cleaned.shape
        summary.lines = report.lines() or ["nothing to drop"]
    return cleaned, report, labels


def prepare_features(
    log: StageLog, cleaned: pd.DataFrame, schema: Schema, config: PipelineConfig
) -> tuple[FeaturePlan, Any]:
    """Which columns the model uses, and the unfitted preprocessing steps for them."""
    with log.stage("features") as summary:
        features = plan_features(schema, config.features)
        preprocessor = build_preprocessor(
            features,
            scale=config.features.scale == "standard",
            impute=config.cleaning.missing == "impute",
        )
        summary.rows_in, summary.columns_in = len(cleaned), len(features.inputs)
        summary.rows_out, summary.columns_out = len(cleaned), len(features.model_columns)
        summary.lines = _describe_plan(features, config)
    return features, preprocessor


def split(
    log: StageLog,
    cleaned: pd.DataFrame,
    target: str,
    features: FeaturePlan,
    task: Task,
    config: PipelineConfig,
) -> Split:
    with log.stage("split") as summary:
        rows = split_rows(cleaned, target, features, task, config)
        summary.rows_in, summary.columns_in = cleaned.shape
        summary.rows_out, summary.columns_out = len(rows.x_train), rows.x_train.shape[1]
        stratified = "stratified, " if task == "classification" and config.split.stratify else ""
        summary.lines = [
            f"{len(rows.x_train)} training rows, {len(rows.x_val)} validation rows "
            f"({stratified}seed {config.split.seed})"
        ]
    return rows


def augment(
    log: StageLog,
    rows: Split,
    extra: pd.DataFrame,
    frame: pd.DataFrame,
    schema: Schema,
    task: Task,
    labels: tuple[Any, ...] | None,
    config: PipelineConfig,
) -> Split:
    """The training part with ``extra``'s rows added, cleaned as the data's were; a row
    cleaning drops, or whose class the data does not have, is left out and counted."""
    target = config.target
    assert target is not None  # train_pipeline checked it
    with log.stage("augment") as summary:
        table = extra.reindex(columns=frame.columns)  # other columns: missing
        table[target] = _typed_like(extra[target], frame[target])
        added, lines = _cleaned_extra(table, schema, target, task, labels, config)
        grown = Split(
            pd.concat([rows.x_train, added[list(rows.x_train.columns)]], ignore_index=True),
            rows.x_val,
            np.concatenate([rows.y_train, added[target].to_numpy()]),
            rows.y_val,
        )
        summary.rows_in, summary.columns_in = len(extra), extra.shape[1]
        summary.rows_out, summary.columns_out = len(grown.x_train), grown.x_train.shape[1]
        summary.lines = [
            f"{len(added)} of {len(extra)} extra labelled rows added to the "
            f"{len(rows.x_train)} training rows (validation rows unchanged)",
            *lines,
        ]
    return grown


def _typed_like(labels: pd.Series, target: pd.Series) -> pd.Series:
    """Labels as JSON gave them (``1``, ``"1"``, ``true``), typed as the data's target
    column, so cleaning types both alike."""
    if target.dtype.kind in "iufb":
        numbers = labels.map(lambda v: int(v) if isinstance(v, bool) else v)
        return pd.to_numeric(numbers, errors="coerce")
    return labels.map(lambda v: v if v is None else str(v)).astype(object)


def _cleaned_extra(
    table: pd.DataFrame,
    schema: Schema,
    target: str,
    task: Task,
    labels: tuple[Any, ...] | None,
    config: PipelineConfig,
) -> tuple[pd.DataFrame, list[str]]:
    if table.empty:
        return table, []
    lenient = config.cleaning.model_copy(update={"max_dropped_fraction": 1.0})
    try:
        cleaned, report = clean(table, schema, target, task, lenient)
    except InvalidData as exc:  # cleaning left no row: there is nothing to add
        return table.iloc[0:0], [exc.message]
    lines = report.lines()
    if labels is not None:
        known = cleaned[target].isin(labels)
        if not known.all():
            lines.append(
                f"left out {int((~known).sum())} rows whose label is not a class of the data"
            )
        cleaned = cleaned[known]
    return cleaned, lines


def train(
    log: StageLog, preprocessor: Any, rows: Split, task: Task, config: PipelineConfig
) -> Fitted:
    """The fitted model (preprocessing + estimator), its trace, and any cross-validation."""
    with log.stage("train") as summary:
        estimator = make_estimator(config.estimator, task)
        model, trace = fit_model(
            preprocessor,
            estimator,
            rows.train,
            rows.validation,
            config.estimator,
            task,
            on_epoch=log.progress.epoch,
        )
        width = int(getattr(model.steps[-1][1], "n_features_in_", 0))
        summary.rows_in, summary.columns_in = len(rows.x_train), rows.x_train.shape[1]
        summary.rows_out, summary.columns_out = len(rows.x_train), width
        summary.lines = [f"{type(estimator).__name__} on {width} model features"]
        summary.lines += [trace.note] if trace.note else []
        summary.lines += trace.warnings
        folds = cross_validate(preprocessor, estimator, rows, task, config)
        if folds:
            summary.lines.append(
                f"{folds['folds']}-fold {folds['metric']}: {folds['mean']:.3f} ± {folds['std']:.3f}"
            )
    return Fitted(model, trace, folds)


def validate(
    log: StageLog,
    model: Any,
    rows: Split,
    task: Task,
    labels: tuple[Any, ...] | None,
    positive: Any,
) -> Scores:
    with log.stage("validate") as summary:
        on_validation = predict(model, rows.x_val, task)
        on_training = predict(model, rows.x_train, task)
        metrics = score(task, rows.y_val, on_validation, labels=labels, positive_label=positive)
        train_metrics = score(
            task, rows.y_train, on_training, labels=labels, positive_label=positive
        )
        summary.rows_in = summary.rows_out = len(rows.x_val)
        summary.columns_in = summary.columns_out = rows.x_val.shape[1]
        summary.lines = [", ".join(f"{k} {v:.3f}" for k, v in metrics.headline().items())]
    return Scores(on_validation, on_training, metrics, train_metrics)


def run_checks(
    log: StageLog,
    fitted: Fitted,
    scores: Scores,
    rows: Split,
    schema: Schema,
    config: PipelineConfig,
) -> list[Check]:
    """Imbalance (classifying), overfitting, leakage, latency and convergence, judged on
    the training and validation rows (nothing is changed)."""
    with log.stage("checks") as summary:
        summary.rows_in = summary.rows_out = len(rows.x_train) + len(rows.x_val)
        summary.columns_in = summary.columns_out = rows.x_train.shape[1]
        checks = []
        if isinstance(scores.metrics, ClassificationMetrics):
            checks.append(check_imbalance(scores.metrics, rows.y_val, config.checks))
        checks.append(check_overfitting(scores.train_metrics, scores.metrics, config.checks))
        kinds: dict[str, FeatureKind] = {
            c.name: c.kind for c in schema.columns if c.kind in ("numeric", "categorical")
        }
        checks.append(
            check_leakage(rows, kinds, scores.metrics, config.checks, seed=config.split.seed)
        )
        checks.append(check_latency(fitted.model, rows.x_val, config.checks))
        convergence = check_convergence(fitted.trace)
        if convergence is not None:
            checks.append(convergence)
        summary.lines = [f"{c.name}: {c.status} — {c.message}" for c in checks]
    return checks


def gate(
    log: StageLog, config: PipelineConfig, metrics: Metrics, checks: list[Check]
) -> list[GateResult]:
    with log.stage("gate") as summary:
        results = evaluate_gate(config.gate, metrics, checks)
        summary.lines = [("pass: " if r.passed else "FAIL: ") + r.message for r in results]
        summary.lines = summary.lines or ["no thresholds configured"]
        summary.passed = all(r.passed for r in results)
    return results


def _describe_column(column: dict[str, Any]) -> str:
    extra = f" ({column['note']})" if column["note"] and column["note"] != "declared" else ""
    declared = ", declared" if column["note"] == "declared" else ""
    missing = f", {column['missing']} missing" if column["missing"] else ""
    return f"`{column['name']}`: {column['kind']} [{column['dtype']}{declared}{missing}]{extra}"


def _describe_plan(plan: FeaturePlan, config: PipelineConfig) -> list[str]:
    lines = []
    if plan.numeric:
        how = "scaled" if config.features.scale == "standard" else "as is"
        lines.append(f"{len(plan.numeric)} numeric ({how}): {', '.join(plan.numeric)}")
    if plan.categorical:
        lines.append(
            f"{len(plan.categorical)} categorical (one-hot): {', '.join(plan.categorical)}"
        )
    for feature in plan.derived:
        lines.append(
            f"derived {', '.join(feature.outputs)} = {feature.operation}"
            f"({', '.join(feature.sources)})"
        )
    if config.cleaning.missing == "impute":
        lines.append("missing values imputed inside the model (median / most frequent)")
    return lines
