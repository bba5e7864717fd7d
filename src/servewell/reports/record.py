"""The one record a training report is rendered from.

The training run builds it (:meth:`servewell.training.result.PipelineResult.report`);
its sections are the JSON forms ``report.json`` holds, so rendering needs none of the
training package's types, and the run and its reports never import each other both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.core.task import Task
from servewell.stats import ClassificationMetrics, RegressionMetrics

Section = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrainingReport:
    """One training run, as its report page, ``report.json`` and model card show it."""

    name: str
    task: Task
    config: Section
    """The pipeline file as JSON, keys as written there (``register``, not ``registration``)."""
    data: Section
    """The data's fingerprint: ``source``, ``sha256``, ``rows``, ``columns``."""
    schema: list[Section]
    """One entry per column: ``name``, ``kind``, ``dtype``, ``missing``, ``distinct``, ``note``."""
    stages: list[Section]
    """The data-flow trace: ``stage``, rows and columns in and out, ``seconds``, ``lines``."""
    cleaning: Section
    cleaning_notes: tuple[str, ...]
    """What cleaning did, a sentence each (rows dropped, values left to impute)."""
    features: Section
    """``inputs``, ``numeric``, ``categorical`` and ``derived`` columns."""
    training: Section
    """The training curve: ``metric``, ``epochs``, ``converged``, ``note``, ``warnings``."""
    cross_validation: Section | None
    metrics: ClassificationMetrics | RegressionMetrics
    """On the validation rows."""
    train_metrics: ClassificationMetrics | RegressionMetrics
    checks: list[Section]
    """``name``, ``status`` (pass or warn), ``message``, ``figures``."""
    gate: list[Section]
    """``criterion``, ``threshold``, ``actual``, ``passed``, ``message``."""
    signature: Section
    profile: Section
    """The reference profile of the training rows (:mod:`servewell.stats.profile`)."""
    validation_truth: np.ndarray[Any, Any]
    validation_values: np.ndarray[Any, Any] | None
    """A regressor's predictions on the validation rows (None for a classifier)."""
    version: Section | None = None
    """``name`` and ``version`` once registered."""
    challenge: Section | None = None
    """A retrained challenger's comparison with its champion (``servewell retrain``):
    ``champion``, ``margin``, ``won``, ``compared`` (criterion, both values, passed,
    message) and both sides' ``metrics`` on the same rows."""

    @property
    def passed(self) -> bool:
        return all(result["passed"] for result in self.gate)

    @property
    def target(self) -> Any:
        return self.config["target"]
