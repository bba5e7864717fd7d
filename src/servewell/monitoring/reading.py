"""How one version's logged rows are read: its features' values, its prediction, the
label it is scored against, and the training reference its drift is judged by.

Inputs are read as the prediction log stores them (``serving/prediction_rows.py``): one
input per raw column (named after it), or one matrix ``input`` whose columns are the
signature's ``feature_names``. Outputs: a classifier's ``label`` (and ``probabilities``,
one column per class in ``class_labels`` order), a regressor's ``variable``, or a
model's one numeric output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from servewell.core.signature import Signature
from servewell.errors import InvalidData
from servewell.runtime.sklearn import INPUT_NAME, is_columnar
from servewell.stats.reference import Reference, reference_of, references

Task = Literal["classification", "regression"]
Label = str | int


@dataclass(frozen=True)
class Reading:
    """What a report needs to know about one version to read its logged rows."""

    signature: Signature
    task: Task | None
    output: str | None
    """The output holding the prediction (``label``, ``variable``, ...)."""
    references: dict[str, Reference] = field(default_factory=dict)
    not_judged: dict[str, str] = field(default_factory=dict)
    """Features with no drift test, and why."""
    prediction_reference: Reference | None = None
    note: str | None = None
    """Why no feature is judged at all (no reference profile), when none is."""

    @property
    def class_labels(self) -> tuple[Label, ...]:
        return tuple(self.signature.class_labels or ())

    def feature_values(self, inputs: list[Any]) -> dict[str, list[Any]]:
        """Each judged feature's values over the rows of every request in ``inputs``."""
        columns: dict[str, list[Any]] = {name: [] for name in self.references}
        if not columns:
            return columns
        if is_columnar(self.signature):
            for logged in inputs:
                if isinstance(logged, Mapping):
                    for name, values in columns.items():
                        if name in logged:
                            values.extend(_flat(logged[name]))
            return columns
        where = {name: i for i, name in enumerate(self.signature.feature_names or ())}
        for logged in inputs:
            matrix = logged.get(INPUT_NAME) if isinstance(logged, Mapping) else None
            for row in matrix or ():
                for name, values in columns.items():
                    if name in where:
                        values.append(row[where[name]])
        return columns

    def predictions(self, outputs: Any) -> list[Any]:
        """Every row's prediction in one request's outputs."""
        if self.output is None or not isinstance(outputs, Mapping):
            return []
        return _flat(outputs.get(self.output, []))

    def probabilities(self, outputs: Any) -> list[float] | None:
        """A one-row answer's class probabilities, when it has one per class."""
        rows = outputs.get("probabilities") if isinstance(outputs, Mapping) else None
        if not isinstance(rows, list) or len(rows) != 1:
            return None
        row = rows[0]
        return row if isinstance(row, list) and len(row) == len(self.class_labels) else None

    def as_class(self, label: Any) -> Any:
        """A label as the class it names (``"1"`` or ``True`` for class ``1``)."""
        if isinstance(label, bool):
            label = int(label)
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        by_text = {str(c): c for c in self.class_labels}
        return by_text.get(str(label), label)


def task_of(signature: Signature) -> tuple[Task | None, str | None]:
    """What a version predicts, and in which output."""
    names = [spec.name for spec in signature.outputs]
    if "label" in names:
        return "classification", "label"
    if "variable" in names:
        return "regression", "variable"
    if len(signature.outputs) == 1 and signature.outputs[0].datatype != "BYTES":
        return "regression", names[0]
    return None, None


def reading_of(
    model: str,
    signature: Signature,
    profile: Mapping[str, Any] | None,
    log_inputs: str | None,
    how_to_profile: str,
) -> Reading:
    """``model``'s version's reading: its drift references from ``profile`` (None: it has none;
    ``how_to_profile`` says how to get one), less the features logged as hashes or not
    at all (``log_inputs``, the model's setting)."""
    task, output = task_of(signature)
    if profile is None:
        note = f"no training reference profile, so no drift is judged: {how_to_profile}"
        return Reading(signature, task, output, note=note)
    found, not_judged = references(profile)
    for name in list(found):
        policy = _policy(signature, name, log_inputs)
        if policy != "full":
            del found[name]
            not_judged[name] = (
                f"inputs logged as '{policy}' (models.{model}.monitoring.log_inputs): "
                "set it to full to judge drift"
            )
    return Reading(signature, task, output, found, not_judged, _prediction_reference(profile))


def _policy(signature: Signature, feature: str, log_inputs: str | None) -> str:
    if log_inputs is not None:
        return log_inputs
    spec = next((s for s in signature.inputs if s.name == feature), signature.inputs[0])
    return "hash" if spec.datatype == "BYTES" else "full"


def _prediction_reference(profile: Mapping[str, Any]) -> Reference | None:
    entry = profile.get("prediction")
    if not isinstance(entry, Mapping):
        return None
    try:
        return reference_of("prediction", entry)
    except InvalidData:
        return None


def _flat(values: Any) -> list[Any]:
    """Nested lists' scalars, in order (a column ``[[1], [2]]`` as ``[1, 2]``)."""
    if not isinstance(values, list):
        return [values]
    if not values or not isinstance(values[0], list):
        return values
    flat: list[Any] = np.asarray(values, dtype=object).reshape(-1).tolist()
    return flat
