"""What a training run produced, and the report record it renders as."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.signature import Signature
from servewell.core.task import Task
from servewell.registry import ModelVersion
from servewell.reports.record import TrainingReport
from servewell.stats.profile import profile_summary
from servewell.training.checks import Check
from servewell.training.cleaning import CleaningReport
from servewell.training.config import PipelineConfig
from servewell.training.data import Dataset, Schema
from servewell.training.evaluate import Metrics, Predictions
from servewell.training.features import FeaturePlan
from servewell.training.fit import Trace
from servewell.training.gate import Gated, GateResult
from servewell.training.progress import StageSummary


@dataclass(slots=True)
class PipelineResult(Gated):
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
    served_metrics: Metrics | None = None
    """The validation metrics of the artifact that serves (set when registering)."""
    challenge: dict[str, Any] | None = None
    """A retrained challenger's comparison with its champion on the same validation
    rows (``servewell retrain``), as its report shows it."""

    def report(self) -> TrainingReport:
        """The run as its report and model card show it, as it stands now (registered or
        not, with the stages run so far)."""
        plan, version = self.plan, self.version
        return TrainingReport(
            name=self.name,
            task=self.task,
            config=self.config.model_dump(mode="json", by_alias=True),
            data=self.dataset.fingerprint.to_dict(),
            schema=self.schema.to_dict(),
            stages=[stage.to_dict() for stage in self.stages],
            cleaning=self.cleaning.to_dict(),
            cleaning_notes=tuple(self.cleaning.lines()),
            features={
                "inputs": list(plan.inputs),
                "numeric": list(plan.numeric),
                "categorical": list(plan.categorical),
                "derived": [f.model_dump(mode="json") for f in plan.derived],
            },
            training=self.trace.to_dict(),
            cross_validation=self.cross_validation,
            metrics=self.metrics,
            train_metrics=self.train_metrics,
            checks=[check.to_dict() for check in self.checks],
            gate=[gate.to_dict() for gate in self.gate],
            signature=self.signature.to_dict(),
            profile=profile_summary(self.profile),
            validation_truth=self.validation_truth,
            validation_values=self.validation_predictions.value,
            version=None if version is None else {"name": version.name, "version": version.version},
            challenge=self.challenge,
        )
