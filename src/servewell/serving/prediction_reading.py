"""How one version's logged rows are read: its features' values, its prediction, the
label it is scored against, and the training reference its drift is judged by.

The same reading serves the log's flush thread (a batch's own arrays, sketched as they
are written: ``serving/prediction_sketches.py``; each read as its JSON reads,
``prediction_rows.as_logged``, so both ways see the same values) and a report's reading
of stored rows (their JSON, ``monitoring/``). Inputs are as the prediction log stores them
(``serving/prediction_rows.py``): one input per raw column (named after it), or one
matrix ``input`` whose columns are the signature's ``feature_names``. Outputs: a
classifier's ``label`` (and ``probabilities``, one column per class in
``class_labels`` order), a regressor's ``variable``, or a model's one numeric output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from servewell.core.signature import Signature
from servewell.core.task import Task, task_of
from servewell.errors import InvalidData
from servewell.registry.access import RegistryAccess
from servewell.registry.attachments import PROFILE_ROLE, read_attachment_json
from servewell.runtime.sklearn import INPUT_NAME, is_columnar
from servewell.serving.prediction_rows import as_logged
from servewell.stats.reference import Reference, reference_of, references

Array = np.ndarray[Any, Any]
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

    def feature_columns(self, inputs: Sequence[Any]) -> tuple[dict[str, Array], dict[str, str]]:
        """Each judged feature's values over the rows of every request in ``inputs``
        (logged JSON or the request's own arrays), one array per feature; and the
        features whose values could not be read, and why."""
        columns: dict[str, Array] = {}
        problems: dict[str, str] = {}
        if not self.references:
            return columns, problems
        columnar = is_columnar(self.signature)
        names = list(self.signature.feature_names or ())
        matrix = np.zeros((0, 0)) if columnar else _stacked(inputs, len(names))
        for name in self.references:
            try:
                if columnar:
                    parts = [as_logged(x[name]) for x in inputs if _has(x, name)]
                    columns[name] = column_of(parts)
                else:
                    at = names.index(name) if name in names else None
                    columns[name] = column_of([] if at is None else [matrix[:, at]])
            except (ValueError, TypeError) as exc:
                problems[name] = f"logged values are not numbers ({exc})"
        return columns, problems

    def prediction_column(self, outputs: Sequence[Any]) -> Array:
        """Every row's prediction over the answers in ``outputs``, as one array."""
        output = self.output
        if output is None:
            return np.zeros(0)
        return column_of([as_logged(o[output]) for o in outputs if _has(o, output)])

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


#: How a version without a reference profile gets one.
HOW_TO_PROFILE = (
    "give it one with servewell profile NAME data.csv (a table of its inputs), or register "
    f"it with servewell train, which keeps the training data's profile ({PROFILE_ROLE})"
)


class Readings:
    """Each model version's reading, built once (its profile fetched from the store)."""

    def __init__(
        self, access: RegistryAccess, log_inputs: Callable[[str], str | None] | None = None
    ) -> None:
        self.access = access
        self.log_inputs = log_inputs or self._log_inputs
        """A model's ``monitoring.log_inputs`` (by default, as the access's settings say)."""
        self.found: dict[tuple[str, int], Reading] = {}

    def of(self, model: str, number: int) -> Reading:
        key = (model, number)
        if key not in self.found:
            self.found[key] = self._build(model, number)
        return self.found[key]

    def fresh(self, model: str, number: int) -> Reading:
        """The version's reading built again (its profile may have been given since)."""
        self.found.pop((model, number), None)
        return self.of(model, number)

    def _log_inputs(self, model: str) -> str | None:
        return self.access.settings.model(model).monitoring.log_inputs

    def _build(self, model: str, number: int) -> Reading:
        version = self.access.registry.get_version(model, number)
        profile = (
            read_attachment_json(self.access, version, PROFILE_ROLE)
            if version.has_artifact(PROFILE_ROLE)
            else None
        )
        return reading_of(model, version.signature, profile, self.log_inputs(model), HOW_TO_PROFILE)


def _has(found: Any, name: str) -> bool:
    """Whether a request's inputs or outputs (logged JSON, or arrays) have ``name``."""
    return (type(found) is dict or isinstance(found, Mapping)) and name in found


def _stacked(inputs: Sequence[Any], width: int) -> Array:
    """Every request's matrix input of ``width`` columns, one under the other."""
    found = []
    for logged in inputs:  # once per row: the dict check first (an ABC's is slower)
        if type(logged) is dict or isinstance(logged, Mapping):
            matrix = logged.get(INPUT_NAME)
            if matrix is not None:
                found.append(as_logged(matrix))
    try:  # the usual batch, every matrix as wide: one call
        stacked = np.concatenate(found) if found else np.zeros((0, width))
    except (ValueError, TypeError):
        stacked = None
    if stacked is not None and stacked.ndim == 2 and stacked.shape[1] == width:
        return stacked
    kept = [array for array in map(_matrix, found) if array.ndim == 2 and array.shape[1] == width]
    return np.concatenate(kept) if kept else np.zeros((0, width))


def _matrix(logged: Any) -> Array:
    """A logged matrix as an array (a ragged one as none: left out)."""
    try:
        return np.asarray(logged)
    except (ValueError, TypeError):
        return np.zeros(0)


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


def column_of(parts: Sequence[Any]) -> Array:
    """``parts`` (arrays or nested lists) as one flat array: numbers as they are, anything
    else as objects, text sent as bytes decoded (as the log's JSON holds it), and an
    infinity (which the JSON holds as null) as NaN: missing either way."""
    if not parts:
        return np.zeros(0)
    try:  # the usual batch, numbers only: one call, not one per part
        joined = np.concatenate(parts, axis=None)
    except (ValueError, TypeError):  # ragged, or numbers beside text: part by part
        joined = None
    if joined is not None and joined.dtype.kind in "biuf":
        if joined.dtype.kind == "f":
            infinite = np.isinf(joined)
            if infinite.any():
                joined = np.where(infinite, np.nan, joined)
        return joined
    arrays = [np.asarray(part).reshape(-1) for part in parts]
    objects = np.concatenate([array.astype(object) for array in arrays])
    decoded: Array = _decode(objects)
    return decoded


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and math.isinf(value):  # as among numbers, above
        return math.nan
    return value


_decode = np.frompyfunc(_decoded, 1, 1)
