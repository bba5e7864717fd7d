"""The training pipeline, stage by stage: load, clean, features, split, train, validate,
checks, gate, register.

:func:`train_pipeline` runs everything up to the gate and returns a
:class:`~servewell.training.result.PipelineResult`;
:func:`~servewell.training.register.register_result` registers a result that passed its
gate; :func:`run_pipeline` does both. Each stage (:mod:`servewell.training.stages`)
reports to a :class:`~servewell.training.progress.Progress` as it runs.
"""

from __future__ import annotations

import pandas as pd

from servewell.core.ref import check_alias, check_name
from servewell.errors import InvalidConfig
from servewell.registry import RegistryAccess
from servewell.training import stages
from servewell.training.config import PipelineConfig
from servewell.training.data import Dataset
from servewell.training.estimators import make_estimator
from servewell.training.gate import check_gate_config
from servewell.training.profile import reference_profile
from servewell.training.progress import Progress, StageLog
from servewell.training.register import register_result
from servewell.training.result import PipelineResult
from servewell.training.signature import columnar_signature, to_inputs
from servewell.training.target import positive_label

#: Validation rows (at most) the ONNX conversion is checked on.
SAMPLE_ROWS = 10_000


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
    dataset: Dataset,
    config: PipelineConfig,
    progress: Progress | None = None,
    *,
    extra_rows: pd.DataFrame | None = None,
) -> PipelineResult:
    """Every stage up to and including the gate; nothing is registered. ``extra_rows``
    (labelled rows of the model's inputs and the target: logged predictions with their
    feedback) are cleaned alike and join the training part only, after the split, so
    the validation rows stay the data's own."""
    target, frame, log = _checked_target(config), dataset.frame, StageLog(progress)
    schema, task = stages.load(log, frame, target, config)
    make_estimator(config.estimator, task)  # foreign or bad parameters: refused now
    cleaned, cleaning, labels = stages.clean_rows(log, frame, schema, target, task, config)
    plan, preprocessor = stages.prepare_features(log, cleaned, schema, config)
    positive = positive_label(config, labels)
    check_gate_config(config.gate, task, labels or ())  # refused before any fitting
    rows = stages.split(log, cleaned, target, plan, task, config)
    if extra_rows is not None:
        rows = stages.augment(log, rows, extra_rows, frame, schema, task, labels, config)
    fitted = stages.train(log, preprocessor, rows, task, config)
    scores = stages.validate(log, fitted.model, rows, task, labels, positive)
    checks = stages.run_checks(log, fitted, scores, rows, schema, config)
    gate = stages.gate(log, config, scores.metrics, checks)
    signature = columnar_signature(
        cleaned,
        plan.inputs,
        labels=labels,
        nullable=config.cleaning.missing == "impute",
        datetimes=schema.names("datetime"),
    )
    return PipelineResult(
        name=config.name or target,
        config=config,
        dataset=dataset,
        task=task,
        schema=schema,
        cleaning=cleaning,
        plan=plan,
        stages=log.summaries,
        trace=fitted.trace,
        labels=labels,
        positive_label=positive,
        metrics=scores.metrics,
        train_metrics=scores.train_metrics,
        validation_truth=rows.y_val,
        validation_predictions=scores.validation,
        checks=checks,
        gate=gate,
        model=fitted.model,
        signature=signature,
        profile=reference_profile(rows.x_train, schema, plan, scores.training, task),
        sample=to_inputs(rows.x_val.head(SAMPLE_ROWS), signature),
        cross_validation=fitted.cross_validation,
        validation_frame=rows.x_val.assign(**{target: rows.y_val}),
    )


def _checked_target(config: PipelineConfig) -> str:
    """The target column; what the model will register as is refused now, not after fit."""
    if not config.target:
        raise InvalidConfig("no target column: give --target or 'target:' in the pipeline file")
    check_name(config.name or config.target)
    if config.registration.alias is not None:
        check_alias(config.registration.alias)
    return config.target
