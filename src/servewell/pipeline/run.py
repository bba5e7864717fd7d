"""The training pipeline, stage by stage: load, clean, features, split, train, validate,
checks, gate, register.

:func:`train_pipeline` runs everything up to the gate and returns a
:class:`PipelineResult`; :func:`register_result` registers a result that passed its gate;
:func:`run_pipeline` does both. Each stage reports to a :class:`Progress` as it runs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from servewell.core.ref import check_alias, check_name
from servewell.core.signature import Signature
from servewell.errors import GateFailed, InvalidConfig, InvalidData
from servewell.pipeline.checks import (
    Check,
    check_convergence,
    check_imbalance,
    check_latency,
    check_leakage,
    check_overfitting,
)
from servewell.pipeline.cleaning import CleaningReport, clean
from servewell.pipeline.config import PipelineConfig
from servewell.pipeline.data import Dataset, Schema, infer_schema, require_column
from servewell.pipeline.estimators import make_estimator
from servewell.pipeline.evaluate import Metrics, Predictions, predict, score
from servewell.pipeline.features import FeaturePlan, build_preprocessor, plan_features
from servewell.pipeline.gate import GateResult, check_gate_config, evaluate_gate, failures
from servewell.pipeline.signature import columnar_signature, to_inputs
from servewell.pipeline.train import EpochRecord, Trace, fit_model
from servewell.registry import ModelVersion, RegistryAccess
from servewell.stats import ClassificationMetrics, build_profile

Task = Literal["classification", "regression"]
#: A numeric target with more distinct values than this is a regression target.
MAX_CLASSES = 20
#: Training rows (at most) kept as the ONNX conversion's verification sample.
SAMPLE_ROWS = 256
#: Validation rows (at most) attached to the version as ``validation.csv``, the rows
#: ``servewell optimize`` judges the version on when given no ``--eval``.
VALIDATION_ROWS = 100_000


class Progress(Protocol):
    """Who wants to know how the pipeline is going (the CLI's Rich display, a log, a test)."""

    def stage_started(self, stage: str) -> None: ...

    def stage_finished(self, summary: StageSummary) -> None: ...

    def epoch(self, record: EpochRecord, total: int) -> None: ...


class SilentProgress:
    def stage_started(self, stage: str) -> None:
        pass

    def stage_finished(self, summary: StageSummary) -> None:
        pass

    def epoch(self, record: EpochRecord, total: int) -> None:
        pass


@dataclass(slots=True)
class StageSummary:
    """One line of the data-flow trace: rows x columns in and out, and what happened."""

    stage: str
    rows_in: int = 0
    columns_in: int = 0
    rows_out: int = 0
    columns_out: int = 0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    passed: bool = True
    """False when the stage failed: a gate threshold missed, or the stage raised."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "passed": self.passed,
            "rows_in": self.rows_in,
            "columns_in": self.columns_in,
            "rows_out": self.rows_out,
            "columns_out": self.columns_out,
            "seconds": self.seconds,
            "lines": self.lines,
        }


@dataclass(slots=True)
class PipelineResult:
    """Everything a run produced; ``version`` is set once it is registered."""

    name: str
    config: PipelineConfig
    dataset: Dataset
    task: Task
    schema: Schema
    cleaning: CleaningReport
    plan: FeaturePlan
    stages: list[StageSummary]
    trace: Trace
    labels: tuple[Any, ...] | None
    positive_label: Any
    metrics: Metrics
    train_metrics: Metrics
    validation_truth: np.ndarray[Any, Any]
    validation_predictions: Predictions
    checks: list[Check]
    gate: list[GateResult]
    model: Any
    signature: Signature
    profile: dict[str, Any]
    sample: dict[str, np.ndarray[Any, Any]]
    cross_validation: dict[str, Any] | None = None
    validation_frame: pd.DataFrame | None = None
    """The validation split: the model's raw input columns and the target."""
    version: ModelVersion | None = None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.gate)

    @property
    def failures(self) -> list[str]:
        return failures(self.gate)


def run_pipeline(
    dataset: Dataset,
    config: PipelineConfig,
    access: RegistryAccess,
    progress: Progress | None = None,
) -> PipelineResult:
    """Train, check, gate and register; raises GateFailed (registering nothing) on a miss."""
    result = train_pipeline(dataset, config, progress)
    register_result(access, result, progress)
    return result


def train_pipeline(
    dataset: Dataset, config: PipelineConfig, progress: Progress | None = None
) -> PipelineResult:
    """Every stage up to and including the gate; nothing is registered."""
    progress = progress or SilentProgress()
    if not config.target:
        raise InvalidConfig("no target column: give --target or 'target:' in the pipeline file")
    target, frame = config.target, dataset.frame
    check_name(config.name or target)  # what it will register as: refused now, not after fit
    if config.registration.alias is not None:
        check_alias(config.registration.alias)
    stages: list[StageSummary] = []

    with _stage(progress, stages, "load") as summary:
        require_column(frame, target)
        schema = infer_schema(frame, target, config.columns)
        task = _task(frame[target], config)
        summary.rows_in, summary.columns_in = frame.shape
        summary.rows_out, summary.columns_out = frame.shape
        summary.lines = [_describe_column(c) for c in schema.to_dict()]
        summary.lines.append(f"target `{target}`: {task}")

    with _stage(progress, stages, "clean") as summary:
        cleaned, report = clean(frame, schema, target, task, config.cleaning)
        labels = _labels(cleaned[target], target, task)
        summary.rows_in, summary.columns_in = frame.shape
        summary.rows_out, summary.columns_out = cleaned.shape
        summary.lines = report.lines() or ["nothing to drop"]

    with _stage(progress, stages, "features") as summary:
        plan = plan_features(schema, config.features)
        preprocessor = build_preprocessor(
            plan,
            scale=config.features.scale == "standard",
            impute=config.cleaning.missing == "impute",
        )
        summary.rows_in, summary.columns_in = len(cleaned), len(plan.inputs)
        summary.rows_out, summary.columns_out = len(cleaned), len(plan.model_columns)
        summary.lines = _describe_plan(plan, config)

    positive = _positive_label(config, labels)
    if labels is not None:
        check_gate_config(config.gate, task, labels)
    else:
        check_gate_config(config.gate, task, ())

    with _stage(progress, stages, "split") as summary:
        x_train, x_val, y_train, y_val = _split(cleaned, target, plan, task, config)
        summary.rows_in, summary.columns_in = cleaned.shape
        summary.rows_out, summary.columns_out = len(x_train), x_train.shape[1]
        summary.lines = [
            f"{len(x_train)} training rows, {len(x_val)} validation rows "
            f"({'stratified, ' if task == 'classification' and config.split.stratify else ''}"
            f"seed {config.split.seed})"
        ]

    with _stage(progress, stages, "train") as summary:
        estimator = make_estimator(config.estimator, task)
        model, trace = fit_model(
            preprocessor,
            estimator,
            (x_train, y_train),
            (x_val, y_val),
            config.estimator,
            task,
            on_epoch=progress.epoch,
        )
        width = _model_width(model)
        summary.rows_in, summary.columns_in = len(x_train), x_train.shape[1]
        summary.rows_out, summary.columns_out = len(x_train), width
        summary.lines = [f"{type(estimator).__name__} on {width} model features"]
        summary.lines += [trace.note] if trace.note else []
        summary.lines += trace.warnings
        cross_validation = _cross_validate(preprocessor, estimator, x_train, y_train, task, config)
        if cross_validation:
            summary.lines.append(
                f"{cross_validation['folds']}-fold {cross_validation['metric']}: "
                f"{cross_validation['mean']:.3f} ± {cross_validation['std']:.3f}"
            )

    with _stage(progress, stages, "validate") as summary:
        val_predictions = predict(model, x_val, task)
        metrics = score(task, y_val, val_predictions, labels=labels, positive_label=positive)
        train_metrics = score(
            task, y_train, predict(model, x_train, task), labels=labels, positive_label=positive
        )
        summary.rows_in = summary.rows_out = len(x_val)
        summary.columns_in = summary.columns_out = x_val.shape[1]
        summary.lines = [", ".join(f"{k} {v:.3f}" for k, v in metrics.headline().items())]

    with _stage(progress, stages, "checks") as summary:
        checks = _run_checks(
            model,
            trace,
            metrics,
            train_metrics,
            (x_train, y_train),
            (x_val, y_val),
            schema,
            task,
            config,
        )
        summary.lines = [f"{c.name}: {c.status} — {c.message}" for c in checks]

    with _stage(progress, stages, "gate") as summary:
        gate = evaluate_gate(config.gate, metrics, checks)
        summary.lines = [("pass: " if r.passed else "FAIL: ") + r.message for r in gate]
        summary.lines = summary.lines or ["no thresholds configured"]
        summary.passed = all(r.passed for r in gate)

    signature = columnar_signature(
        cleaned, plan.inputs, labels=labels, allow_nan=config.cleaning.missing == "impute"
    )
    train_predictions = predict(model, x_train, task)
    profile = _profile(x_train, schema, plan, train_predictions, task)
    return PipelineResult(
        name=config.name or target,
        config=config,
        dataset=dataset,
        task=task,
        schema=schema,
        cleaning=report,
        plan=plan,
        stages=stages,
        trace=trace,
        labels=labels,
        positive_label=positive,
        metrics=metrics,
        train_metrics=train_metrics,
        validation_truth=y_val,
        validation_predictions=val_predictions,
        checks=checks,
        gate=gate,
        model=model,
        signature=signature,
        profile=profile,
        sample=to_inputs(x_train.head(SAMPLE_ROWS), signature),
        cross_validation=cross_validation,
        validation_frame=x_val.assign(**{target: y_val}),
    )


def register_result(
    access: RegistryAccess, result: PipelineResult, progress: Progress | None = None
) -> ModelVersion:
    """Register a result that passed its gate, with its profile, card, report and
    validation split (``validation.csv``, read by ``servewell optimize``) attached."""
    from servewell.pipeline.card import model_card
    from servewell.pipeline.register import RegisterOptions, register_estimator
    from servewell.pipeline.report import report_html, report_json

    progress = progress or SilentProgress()
    if not result.passed:
        raise GateFailed(result.failures)
    stages: list[StageSummary] = []
    with _stage(progress, stages, "register") as summary:
        options = RegisterOptions(
            signature=result.signature,
            metrics=_registry_metrics(result),
            params=_registry_params(result),
            tags={
                "task": result.task,
                "pipeline": "servewell train",
                **result.config.registration.tags,
            },
            alias=result.config.registration.alias,
            description=result.config.registration.description,
            sample=result.sample,
            attachments={
                "profile.json": _json_bytes(result.profile),
                "model_card.md": model_card(result).encode("utf-8"),
                "report.json": report_json(result).encode("utf-8"),
                "report.html": report_html(result).encode("utf-8"),
                **_validation_attachment(result),
            },
        )
        version = register_estimator(access, result.name, result.model, options=options)
        result.version = version
        served = "ONNX" if version.has_artifact("onnx") else "scikit-learn"
        summary.lines = [f"registered {version.name}@{version.version} (serves via {served})"]
    result.stages.extend(stages)
    return version


@contextmanager
def _stage(progress: Progress, stages: list[StageSummary], name: str) -> Iterator[StageSummary]:
    summary = StageSummary(name)
    progress.stage_started(name)
    start = time.perf_counter()
    try:
        yield summary
    except BaseException:
        summary.passed = False
        raise
    finally:  # a stage that raised is shown (as failed) too
        summary.seconds = time.perf_counter() - start
        stages.append(summary)
        progress.stage_finished(summary)


def _task(target: pd.Series, config: PipelineConfig) -> Task:
    if config.task != "auto":
        return config.task
    present = target.dropna()
    if present.dtype.kind == "f" and not (present == np.round(present)).all():
        return "regression"
    if present.dtype.kind in "iuf" and present.nunique() > MAX_CLASSES:
        return "regression"
    return "classification"


def _labels(target: pd.Series, name: str, task: Task) -> tuple[Any, ...] | None:
    if task == "regression":
        return None
    counts = target.value_counts()
    if len(counts) < 2:
        only = counts.index[0] if len(counts) else "nothing"
        raise InvalidData(
            f"target '{name}' has one class only ('{only}' in all {len(target)} rows); "
            "a classifier needs at least two",
            column=name,
        )
    rare = counts[counts < 2]
    if len(rare):
        raise InvalidData(
            f"class '{rare.index[0]}' of target '{name}' has only 1 row; each class needs at "
            "least 2 to appear on both sides of the train/validation split",
            column=name,
        )
    return tuple(sorted(counts.index.tolist()))


def _positive_label(config: PipelineConfig, labels: tuple[Any, ...] | None) -> Any:
    if labels is None or len(labels) != 2:
        return None
    if config.positive_label is None:
        return labels[1]
    for label in labels:
        if str(label) == str(config.positive_label):
            return label
    raise InvalidConfig(
        f"positive_label '{config.positive_label}' is not a class of the target "
        f"({', '.join(map(str, labels))})"
    )


def _split(
    cleaned: pd.DataFrame, target: str, plan: FeaturePlan, task: Task, config: PipelineConfig
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.model_selection import train_test_split

    features = cleaned[list(plan.inputs)]
    y = cleaned[target].to_numpy()
    stratify = y if task == "classification" and config.split.stratify else None
    try:
        x_train, x_val, y_train, y_val = train_test_split(
            features,
            y,
            test_size=config.split.validation_fraction,
            random_state=config.split.seed,
            stratify=stratify,
        )
    except ValueError as exc:
        raise InvalidData(f"cannot split {len(cleaned)} rows for validation: {exc}") from exc
    return (x_train.reset_index(drop=True), x_val.reset_index(drop=True), y_train, y_val)


def _cross_validate(
    preprocessor: Any,
    estimator: Any,
    x_train: pd.DataFrame,
    y_train: np.ndarray[Any, Any],
    task: Task,
    config: PipelineConfig,
) -> dict[str, Any] | None:
    folds = config.split.folds
    if folds < 2:
        return None
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import Pipeline

    fresh = clone(estimator)
    if config.estimator.kind == "mlp":
        fresh.set_params(
            max_iter=config.estimator.max_epochs,
            tol=config.estimator.tol,
            n_iter_no_change=config.estimator.patience,
        )
    splitter_cls = StratifiedKFold if task == "classification" else KFold
    splitter = splitter_cls(n_splits=folds, shuffle=True, random_state=config.split.seed)
    metric = "accuracy" if task == "classification" else "r2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the final model's own fit reports its warnings
        scores = cross_val_score(
            Pipeline([*clone(preprocessor).steps, ("model", fresh)]),
            x_train,
            y_train,
            cv=splitter,
            scoring=metric,
            error_score="raise",
        )
    return {
        "folds": folds,
        "metric": metric,
        "scores": scores.tolist(),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
    }


def _run_checks(
    model: Any,
    trace: Trace,
    metrics: Metrics,
    train_metrics: Metrics,
    train: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    validation: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    schema: Schema,
    task: Task,
    config: PipelineConfig,
) -> list[Check]:
    checks = []
    if isinstance(metrics, ClassificationMetrics):
        checks.append(check_imbalance(metrics, validation[1], config.checks))
    metric = "accuracy" if task == "classification" else "r2"
    checks.append(
        check_overfitting(
            getattr(train_metrics, metric), getattr(metrics, metric), metric, config.checks
        )
    )
    kinds = {c.name: c.kind for c in schema.columns if c.kind != "ignore"}
    checks.append(check_leakage(train, validation, kinds, task, config.checks))
    checks.append(check_latency(model, validation[0], config.checks))
    convergence = check_convergence(trace)
    if convergence is not None:
        checks.append(convergence)
    return checks


def _profile(
    x_train: pd.DataFrame,
    schema: Schema,
    plan: FeaturePlan,
    predictions: Predictions,
    task: Task,
) -> dict[str, Any]:
    columns = {name: x_train[name].to_numpy() for name in plan.inputs}
    kinds: dict[str, Literal["numeric", "categorical"]] = {
        name: "numeric" if schema.kind_of(name) == "numeric" else "categorical"
        for name in plan.inputs
    }
    datetimes = [name for name in plan.inputs if schema.kind_of(name) == "datetime"]
    for name in datetimes:  # live timestamps always drift; keep their range only
        columns.pop(name)
    profile = build_profile(
        columns,
        kinds,
        predictions=predictions.to_outputs(),
        prediction_kind="categorical" if task == "classification" else "numeric",
    )
    for name in datetimes:
        values = x_train[name].dropna()
        profile["features"][name] = {
            "kind": "datetime",
            "count": len(x_train),
            "missing": int(x_train[name].isna().sum()),
            "min": str(values.min()),
            "max": str(values.max()),
        }
    if predictions.probabilities is not None and predictions.probabilities.shape[1] == 2:
        from servewell.stats import numeric_profile

        profile["score"] = numeric_profile(predictions.probabilities[:, 1])
    return profile


def _model_width(model: Any) -> int:
    return int(getattr(model.steps[-1][1], "n_features_in_", 0))


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


def _registry_metrics(result: PipelineResult) -> dict[str, Any]:
    metrics: dict[str, Any] = dict(result.metrics.headline())
    metrics["validation_rows"] = len(result.validation_truth)
    latency = next(c for c in result.checks if c.name == "latency")
    metrics |= {"p50_ms": latency.figures["p50_ms"], "p99_ms": latency.figures["p99_ms"]}
    return metrics


def _registry_params(result: PipelineResult) -> dict[str, Any]:
    return {
        "pipeline": result.config.model_dump(mode="json", by_alias=True),
        "estimator": result.config.estimator.kind,
        "target": result.config.target,
        "task": result.task,
        "positive_label": result.positive_label,
        "data": result.dataset.fingerprint.to_dict(),
        "rows_after_cleaning": result.cleaning.rows_out,
    }


def _validation_attachment(result: PipelineResult) -> dict[str, bytes]:
    if result.validation_frame is None:
        return {}
    rows = result.validation_frame.head(VALIDATION_ROWS)
    return {"validation.csv": rows.to_csv(index=False).encode("utf-8")}


def _json_bytes(data: Any) -> bytes:
    import json

    return json.dumps(data, indent=2, default=str).encode("utf-8")
