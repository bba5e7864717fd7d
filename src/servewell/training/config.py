"""The pipeline file (``pipeline.yaml``): everything ``servewell train`` can be told.

Unknown keys are errors, so a typo never silently falls back to a default::

    name: clicks
    target: clicked
    estimator: {kind: mlp, params: {hidden_layer_sizes: [32]}, max_epochs: 100}
    columns: {user_id: ignore}
    cleaning: {missing: drop, valid: {age: {min: 0, max: 120}}}
    features:
      derived:
        - {name: click_rate, ratio: [clicks, impressions]}
        - {name: time_since_last_click, difference: [timestamp, last_click_at], unit: h}
        - {name: visit, datetime: timestamp, parts: [hour, weekday]}
    split: {validation_fraction: 0.2, seed: 42, folds: 5}
    gate: {min_accuracy: 0.9, min_recall: {"1": 0.5}, max_p99_ms: 10}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from servewell.core.task import Task
from servewell.errors import InvalidConfig
from servewell.settings.section import error_message

EstimatorKind = Literal["mlp", "logistic", "random_forest", "gradient_boosting"]
ColumnKind = Literal["numeric", "categorical", "datetime", "ignore"]
DatetimePart = Literal["year", "month", "day", "weekday", "hour", "minute", "dayofyear"]
TimeUnit = Literal["s", "m", "h", "d"]
CheckName = Literal["imbalance", "overfitting", "leakage", "convergence"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EstimatorConfig(_Section):
    """Which model to fit, and how long to let it train."""

    kind: EstimatorKind = "gradient_boosting"
    """The default needs no scaling or tuning, and converges on any table."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of that kind's scikit-learn estimator (e.g. ``hidden_layer_sizes``
    for the MLP); a parameter the estimator does not take is refused before training."""
    max_epochs: int = Field(default=200, ge=1)
    """Most passes over the data for the MLP (or boosting stages, when not in params)."""
    tol: float = Field(default=1e-4, ge=0)
    """The MLP has converged when its loss improved by less than this ..."""
    patience: int = Field(default=10, ge=1)
    """... for this many epochs in a row."""
    on_no_convergence: Literal["fail", "warn"] = "fail"
    """Whether a model that has not converged after ``max_epochs`` fails or only warns."""
    seed: int = 42


class ValidRange(_Section):
    """Inclusive bounds of a column's valid values; rows outside are dropped."""

    min: float | None = None
    max: float | None = None


class CleaningConfig(_Section):
    missing: Literal["drop", "impute"] = "drop"
    """Drop rows with a missing feature, or impute it inside the model (median/most common)."""
    duplicates: Literal["drop", "keep"] = "drop"
    duplicate_columns: tuple[str, ...] = ()
    """The columns whose values together make a row a duplicate of an earlier one
    (default: every column of the data, ignored ones included)."""
    valid: dict[str, ValidRange] = Field(default_factory=dict)
    max_dropped_fraction: float = Field(default=0.5, ge=0, le=1)
    """Refuse the data when cleaning would drop more than this share of its rows."""


class DerivedFeature(_Section):
    """One new column computed from others; exactly one of the operations is given."""

    name: str = Field(min_length=1)
    ratio: tuple[str, str] | None = None
    """numerator / denominator; ``fill`` where the denominator is 0."""
    difference: tuple[str, str] | None = None
    """first - second; for two datetime columns, the time between them in ``unit``."""
    product: tuple[str, str] | None = None
    log: str | None = None
    """sign(x) * log(1 + |x|): defined for every number."""
    datetime: str | None = None
    """A datetime column split into ``parts``, each a column ``<name>_<part>``."""
    parts: tuple[DatetimePart, ...] = ("hour", "weekday")
    unit: TimeUnit = "s"
    fill: float = 0.0

    @model_validator(mode="after")
    def _one_operation(self) -> Self:
        given = [op for op in OPERATIONS if getattr(self, op) is not None]
        if len(given) != 1:
            raise ValueError(
                f"derived feature '{self.name}' needs exactly one of {', '.join(OPERATIONS)}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def operation(self) -> str:
        return next(op for op in OPERATIONS if getattr(self, op) is not None)

    @property
    def sources(self) -> tuple[str, ...]:
        value = getattr(self, self.operation)
        return (value,) if isinstance(value, str) else tuple(value)

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.operation == "datetime":
            return tuple(f"{self.name}_{part}" for part in self.parts)
        return (self.name,)


OPERATIONS = ("ratio", "difference", "product", "log", "datetime")


class FeaturesConfig(_Section):
    scale: Literal["standard", "none"] = "standard"
    derived: tuple[DerivedFeature, ...] = ()


class SplitConfig(_Section):
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    stratify: bool = True
    folds: int = Field(default=0, ge=0)
    """k-fold cross-validation on the training part as well, when 2 or more."""


class ChecksConfig(_Section):
    """When a reviewer's check turns from pass to warn."""

    baseline_margin: float = Field(default=0.02, ge=0)
    """Warn when accuracy beats the majority-class baseline by less than this."""
    min_class_recall: float = Field(default=0.5, ge=0, le=1)
    max_overfit_gap: float = Field(default=0.05, ge=0)
    """Warn when a training score beats its validation score by more than this: accuracy,
    balanced accuracy, ROC-AUC or the rarest class's recall (R² for a number)."""
    leakage_balanced_accuracy: float = Field(default=0.965, ge=0, le=1)
    """Warn when one feature alone, out of sample, reaches this balanced accuracy ..."""
    leakage_roc_auc: float = Field(default=0.995, ge=0, le=1)
    """... or this ROC-AUC (one-vs-rest macro for more than two classes) ..."""
    leakage_r2: float = Field(default=0.95, le=1)
    """... or, for a numeric target, this R²."""
    leakage_model_margin: float = Field(default=0.005, ge=0)
    """Warn too when one strong feature (ROC-AUC or R² ≥ 0.9, and 0.02 ahead of every
    other feature) alone comes within this of the full model's validation ROC-AUC (R²)."""
    latency_rows: int = Field(default=200, ge=10)
    """Single-row predictions timed for the latency check."""


class GateConfig(_Section):
    """Thresholds a model must meet to be registered; unset ones are not checked.

    A number for precision/recall/f1 applies to the positive class of a binary target
    (macro average otherwise); a mapping gives one threshold per class. ``min_roc_auc``
    is the positive class's for a binary target, the one-vs-rest macro average for more
    classes; ``min_pr_auc`` applies to binary targets only.
    """

    min_accuracy: float | None = None
    min_precision: float | dict[str, float] | None = None
    min_recall: float | dict[str, float] | None = None
    min_f1: float | dict[str, float] | None = None
    min_roc_auc: float | None = None
    min_pr_auc: float | None = None
    max_log_loss: float | None = None
    max_mae: float | None = None
    max_rmse: float | None = None
    min_r2: float | None = None
    max_p50_ms: float | None = None
    max_p99_ms: float | None = None
    max_size_bytes: int | None = None
    block_on_warnings: tuple[CheckName, ...] = ()
    """Checks whose warning fails the gate too."""


class RegisterConfig(_Section):
    alias: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    intended_use: str = ""
    """A sentence for the model card: who should use the model, for what."""


class PipelineConfig(_Section):
    """A whole pipeline file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    target: str | None = None
    task: Literal["auto"] | Task = "auto"
    positive_label: str | int | None = None
    """The class ROC/PR curves and single-number precision/recall are about (binary)."""
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    columns: dict[str, ColumnKind] = Field(default_factory=dict)
    """Override the inferred kind of a column, or ``ignore`` it."""
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    registration: RegisterConfig = Field(default_factory=RegisterConfig, alias="register")

    @model_validator(mode="after")
    def _unique_feature_names(self) -> Self:
        seen: set[str] = set()
        for feature in self.features.derived:
            clash = seen.intersection(feature.outputs)
            if clash:
                raise ValueError(f"derived feature name '{sorted(clash)[0]}' is used twice")
            seen.update(feature.outputs)
        return self

    def with_overrides(self, **values: Any) -> PipelineConfig:
        """A copy with the CLI's flags applied (``None`` leaves the file's value).

        Another estimator than the file's drops the file's ``estimator.params``: they
        are that estimator's keyword arguments, not the new one's.
        """
        data = self.model_dump(by_alias=True)
        for key, value in values.items():
            if value is None:
                continue
            if key == "estimator":
                if value != data["estimator"]["kind"]:
                    data["estimator"]["params"] = {}
                data["estimator"]["kind"] = value
            else:
                data[key] = value
        return parse_config(data, source="options")


def load_config(path: Path) -> PipelineConfig:
    """Read and check a pipeline file; every problem is an InvalidConfig naming the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidConfig(f"cannot read pipeline file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidConfig(f"pipeline file {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidConfig(f"pipeline file {path} must be a mapping of keys to values")
    return parse_config(data, source=str(path))


def parse_config(data: dict[str, Any], *, source: str = "pipeline config") -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfig(f"{source}: {describe_error(exc)}") from exc


def describe_error(exc: ValidationError) -> str:
    """The first problem, as ``key.path: what is wrong``."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    message = error_message(error)
    return f"{where}: {message}" if where else message
