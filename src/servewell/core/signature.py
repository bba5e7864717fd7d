"""A model's signature: the tensors it takes and gives, and what its features mean.

A signature is inferred when a model is registered (from an ONNX graph or a fitted
scikit-learn estimator) or given as a JSON file, and stored with the version. The server
validates every request against it (see :mod:`servewell.core.validation`).

JSON form::

    {
      "inputs":  [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}],
      "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                  {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
      "feature_names": ["mean radius", ...],
      "feature_ranges": {"mean radius": {"min": 0, "max": 50}},
      "class_labels": [0, 1],
      "allow_nan": false,
      "max_batch_size": 64
    }
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from servewell.errors import InvalidSignature
from servewell.settings.section import error_message

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip

MAX_ROW_VALUES = 2**27
"""The most values one row of a tensor may hold (512 MiB of FP32): a bound, so a typo'd
dimension is a clear error rather than an allocation that fails."""


class TensorSpec(BaseModel):
    """One named tensor; ``-1`` in ``shape`` marks a variable dimension (the batch first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    datatype: Datatype
    shape: tuple[int, ...] = Field(min_length=1)
    nullable: bool = False
    """Rows may lack a value here (JSON null, an empty CSV cell, NaN; for text also
    ``""``), which the model imputes. Only float and BYTES tensors can carry one."""
    datetime: bool = False
    """BYTES holding ISO 8601 datetimes: validation parses them and passes them on as
    ``YYYY-MM-DDTHH:MM:SS`` (UTC), the layout the model was trained on."""

    @model_validator(mode="after")
    def _check_shape(self) -> Self:
        if self.nullable and self.datatype not in ("FP16", "FP32", "FP64", "BYTES"):
            raise ValueError(
                f"tensor '{self.name}': only float and BYTES tensors can be nullable "
                f"({self.datatype} has no missing value)"
            )
        if self.datetime and self.datatype != "BYTES":
            raise ValueError(f"tensor '{self.name}': datetime inputs are BYTES (ISO 8601 text)")
        if any(dim < -1 or dim == 0 for dim in self.shape):
            raise ValueError(f"tensor '{self.name}': dimensions are -1 (variable) or positive")
        row_values = math.prod(max(dim, 1) for dim in self.row_shape)
        if row_values > MAX_ROW_VALUES:
            raise ValueError(
                f"one row of tensor '{self.name}' would hold {row_values} values; "
                f"at most {MAX_ROW_VALUES}"
            )
        return self

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one row: everything after the batch dimension."""
        return self.shape[1:]


class FeatureRange(BaseModel):
    """Inclusive bounds a feature's values must lie within."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None


class Signature(BaseModel):
    """What a model takes and gives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = ()
    feature_names: tuple[str, ...] | None = None
    """Column names of the (single, 2-D) input, in order."""
    feature_ranges: dict[str, FeatureRange] = Field(default_factory=dict)
    class_labels: tuple[str | int, ...] | None = None
    """A classifier's classes, in the order of its probability columns."""
    allow_nan: bool = False
    """Whether NaN and infinities are valid input values (some models impute them)."""
    max_batch_size: int | None = Field(default=None, ge=1)
    """Most rows the model takes in one call: the server batches no more than this, and
    a request with more rows is refused (400). None: the settings decide."""

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError("input names must be unique")
        if self.feature_names is not None:
            width = self.inputs[0].shape[-1] if len(self.inputs) == 1 else len(self.inputs)
            if len(self.inputs) == 1 and len(self.inputs[0].shape) != 2:
                raise ValueError("feature_names need one 2-D input [rows, features]")
            if width != -1 and width != len(self.feature_names):
                raise ValueError(
                    f"{len(self.feature_names)} feature_names for {width} input columns"
                )
        unknown = set(self.feature_ranges) - set(self.feature_names or ())
        if unknown:
            raise ValueError(f"feature_ranges name unknown features: {sorted(unknown)}")
        self._check_class_labels()
        for name, bounds in self.feature_ranges.items():
            given = [bound for bound in (bounds.min, bounds.max) if bound is not None]
            if any(math.isnan(bound) for bound in given):
                raise ValueError(f"feature range of '{name}': NaN is not a bound")
            if len(given) == 2 and given[0] > given[1]:
                raise ValueError(
                    f"feature range of '{name}': min {given[0]} is above max {given[1]}"
                )
        return self

    def _check_class_labels(self) -> None:
        if self.class_labels is None:
            return
        for spec in self.outputs:
            if spec.name == "probabilities" and spec.shape[-1] not in (-1, len(self.class_labels)):
                raise ValueError(
                    f"class_labels has {len(self.class_labels)} labels, but output "
                    f"'probabilities' is {list(spec.shape)} ({spec.shape[-1]} classes)"
                )

    @cached_property
    def feature_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Lowest and highest allowed value of each feature, in feature order (infinite
        where unbounded): computed once, used by every request's range check."""
        ranges = [self.feature_ranges.get(name) for name in self.feature_names or ()]
        low = tuple(float("-inf") if r is None or r.min is None else r.min for r in ranges)
        high = tuple(float("inf") if r is None or r.max is None else r.max for r in ranges)
        return low, high

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidSignature(f"invalid signature: {_first_error(exc)}") from exc

    @classmethod
    def from_json_file(cls, path: Path) -> Signature:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidSignature(f"cannot read signature file {path}: {exc.strerror}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidSignature(f"signature file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = error_message(error)
    return f"{where}: {message}" if where else message
