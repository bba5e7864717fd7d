"""Feature engineering that travels with the model.

Derived features, scaling, one-hot encoding and imputation are steps of one fitted
scikit-learn Pipeline, so the server applies exactly the training transforms to raw
rows. :class:`DerivedFeatures` is a proper, picklable transformer class; the model
needs servewell installed wherever it is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from servewell.core.datetimes import parse_datetimes
from servewell.errors import InvalidConfig
from servewell.training.config import DerivedFeature, FeaturesConfig
from servewell.training.data import Schema

SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: A missing text value, as the model's steps hold it (see :class:`DerivedFeatures`).
MISSING_TEXT = ""


@dataclass(frozen=True, slots=True)
class FeaturePlan:
    """Which columns enter the model, raw and derived, and as what."""

    inputs: tuple[str, ...]
    """Raw columns a client sends, in order."""
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    datetime: tuple[str, ...]
    derived: tuple[DerivedFeature, ...]

    @property
    def model_columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def plan_features(schema: Schema, config: FeaturesConfig) -> FeaturePlan:
    """Check the derived features against the data's columns and list what the model uses."""
    kinds: dict[str, str] = {c.name: c.kind for c in schema.columns if c.kind != "ignore"}
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    columns = {c.name for c in schema.columns}
    for feature in config.derived:
        for source in feature.sources:
            _check_source(feature, source, kinds, schema)
        clash = sorted(set(feature.outputs) & columns)
        if clash:
            raise InvalidConfig(
                f"derived feature '{clash[0]}' has the name of a column of the data; "
                "give it another name",
                feature=feature.name,
            )
        _check_kinds(feature, [kinds[s] for s in feature.sources])
        numeric.extend(feature.outputs)
        kinds.update(dict.fromkeys(feature.outputs, "numeric"))
    datetimes = tuple(c for c, k in kinds.items() if k == "datetime")
    inputs = tuple(c.name for c in schema.columns if c.kind != "ignore")
    return FeaturePlan(inputs, tuple(numeric), tuple(categorical), datetimes, config.derived)


def _check_source(
    feature: DerivedFeature, source: str, kinds: dict[str, str], schema: Schema
) -> None:
    if source in kinds:
        return
    ignored = any(c.name == source for c in schema.columns)
    reason = "is ignored (see columns:)" if ignored else "is not in the data"
    available = ", ".join(kinds)
    raise InvalidConfig(
        f"derived feature '{feature.name}' uses column '{source}', which {reason}; "
        f"available: {available}",
        feature=feature.name,
        column=source,
    )


def _check_kinds(feature: DerivedFeature, kinds: list[str]) -> None:
    operation = feature.operation
    if operation == "datetime" and kinds != ["datetime"]:
        wrong = f"'{feature.sources[0]}' is {kinds[0]}"
    elif operation == "difference" and len(set(kinds)) == 1 and kinds[0] in ("numeric", "datetime"):
        return
    elif operation != "datetime" and any(kind != "numeric" for kind in kinds):
        bad = next(s for s, k in zip(feature.sources, kinds, strict=True) if k != "numeric")
        wrong = f"'{bad}' is {kinds[feature.sources.index(bad)]}"
    else:
        return
    needs = {
        "datetime": "a datetime column",
        "difference": "two numeric or two datetime columns",
    }.get(operation, "numeric columns")
    raise InvalidConfig(f"derived feature '{feature.name}' ({operation}) needs {needs}; {wrong}")


class DerivedFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Adds the declared columns to a DataFrame and turns datetime text into numbers.

    ``features`` holds plain dicts (a DerivedFeature's fields) so the fitted pipeline
    pickles without pydantic; ``datetime_columns`` are parsed from ISO 8601 text;
    in ``text_columns`` a missing value becomes ``""``, the one missing text value the
    imputer (and ONNX, whose strings cannot be null) knows.
    """

    def __init__(
        self,
        features: Sequence[dict[str, Any]] = (),
        datetime_columns: Sequence[str] = (),
        text_columns: Sequence[str] = (),
    ) -> None:
        self.features = features
        self.datetime_columns = datetime_columns
        self.text_columns = text_columns

    @classmethod
    def register_onnx_converter(cls) -> None:
        """Teach skl2onnx this step (registration converts pipelines that hold it)."""
        from servewell.training.features_onnx import register_converter

        register_converter(cls)

    def fit(self, X: pd.DataFrame, y: Any = None) -> DerivedFeatures:
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = X.copy()
        for name in getattr(self, "text_columns", ()):  # absent from older pickles
            frame[name] = frame[name].astype(object).where(frame[name].notna(), MISSING_TEXT)
        for name in self.datetime_columns:
            frame[name] = _datetimes(frame[name], name)
        for spec in self.features:
            feature = DerivedFeature.model_validate(spec)
            for name, values in derive(feature, frame).items():
                frame[name] = values
        return frame

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        names = list(self.feature_names_in_)
        for spec in self.features:
            names.extend(DerivedFeature.model_validate(spec).outputs)
        return np.asarray(names, dtype=object)


def derive(feature: DerivedFeature, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The new column(s) of one derived feature, as float64."""
    columns = [frame[source] for source in feature.sources]
    operation = feature.operation
    if operation == "datetime":
        stamps = columns[0]
        return {
            f"{feature.name}_{part}": _part(stamps, part).astype(np.float64)
            for part in feature.parts
        }
    if operation == "difference" and columns[0].dtype.kind == "M":
        seconds = (columns[0] - columns[1]).dt.total_seconds()
        return {feature.name: seconds / SECONDS_PER_UNIT[feature.unit]}
    a = columns[0].astype(np.float64)
    if operation == "log":
        return {feature.name: np.sign(a) * np.log1p(np.abs(a))}
    b = columns[1].astype(np.float64)
    if operation == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = a / b
        return {feature.name: values.where(b != 0, feature.fill)}
    return {feature.name: a - b if operation == "difference" else a * b}


#: Datetime part names in the pipeline file -> pandas ``.dt`` accessors.
PART_ACCESSORS = {"weekday": "day_of_week", "dayofyear": "day_of_year"}


def _part(stamps: pd.Series, part: str) -> pd.Series:
    return getattr(stamps.dt, PART_ACCESSORS.get(part, part))


def _datetimes(values: pd.Series, name: str) -> pd.Series:
    if values.dtype.kind == "M":
        return values
    parsed = parse_datetimes(values.astype(object).astype(str))
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise ValueError(f"column '{name}' expects ISO 8601 datetimes, got '{values[bad].iloc[0]}'")
    return parsed


def build_preprocessor(plan: FeaturePlan, *, scale: bool, impute: bool) -> Any:
    """Derived features (when any), then scaling/one-hot (and imputation) per column kind."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps: list[tuple[str, Any]] = []
    categorical_steps: list[tuple[str, Any]] = []
    if impute:
        numeric_steps.append(("impute", SimpleImputer(strategy="median")))
        categorical_steps.append(
            ("impute", SimpleImputer(strategy="most_frequent", missing_values=MISSING_TEXT))
        )
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps.append(
        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    )
    transformers: list[tuple[str, Any, list[str]]] = []
    if plan.numeric:
        numeric = Pipeline(numeric_steps) if numeric_steps else "passthrough"
        transformers.append(("numeric", numeric, list(plan.numeric)))
    if plan.categorical:
        transformers.append(("categorical", Pipeline(categorical_steps), list(plan.categorical)))
    prepare = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    steps: list[tuple[str, Any]] = []
    if plan.derived or plan.datetime or plan.categorical:
        derived = [f.model_dump(mode="json") for f in plan.derived]
        step = DerivedFeatures(derived, list(plan.datetime), list(plan.categorical))
        steps.append(("derive", step))
    steps.append(("prepare", prepare))
    return Pipeline(steps)
