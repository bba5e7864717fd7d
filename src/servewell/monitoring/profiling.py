"""A reference profile for a version registered without training (an ONNX file, a
Python model): ``servewell profile NAME data.csv``.

The table holds the version's input columns, exactly (a column missing or one too many
is refused, naming them): the signature's inputs, or the ``feature_names`` of its one
matrix input. The version is run on the rows, so the profile holds its predictions too
(what prediction drift is judged by), and it is stored as the training pipeline stores
its own (:data:`~servewell.training.holdout.PROFILE_ROLE`, by
:func:`~servewell.training.profile.table_profile`): ``servewell monitor`` judges drift
the same way for both. A version that has a profile keeps it unless ``replace`` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from servewell.core.ref import ModelRef
from servewell.core.signature import Signature
from servewell.core.task import Task, task_of
from servewell.errors import InvalidData, InvalidInput
from servewell.registry import Artifact, ModelVersion, RegistryAccess
from servewell.registry.attachments import PROFILE_ROLE
from servewell.runtime.sklearn import is_columnar
from servewell.serving.loading import open_runtime
from servewell.training.data import load_dataset
from servewell.training.evaluate import Predictions, predict_batches
from servewell.training.holdout import inputs_from_frame
from servewell.training.profile import ColumnKind, compact_json, table_profile


@dataclass(frozen=True)
class Profiled:
    """What ``servewell profile`` stored, and with which version."""

    version: ModelVersion
    rows: int
    kinds: dict[str, ColumnKind]
    prediction: str | None
    """The output whose values were profiled (None: none the monitor reads)."""
    replaced: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.version.name,
            "version": self.version.version,
            "rows": self.rows,
            "features": self.kinds,
            "prediction": self.prediction,
            "replaced": self.replaced,
        }


def check_target(
    access: RegistryAccess, name: str, version: int | None, *, replace: bool
) -> ModelVersion:
    """The version to profile (``version``, else the one ``name`` resolves to: its
    production alias, else its latest); refused if it has a profile and not ``replace``."""
    found = access.registry.resolve(ModelRef(name, version=version))
    if found.has_artifact(PROFILE_ROLE) and not replace:
        raise InvalidInput(
            f"{found.name}@{found.version} already has a reference profile ({PROFILE_ROLE}); "
            "give --replace to replace it"
        )
    return found


def profile_version(
    access: RegistryAccess,
    version: ModelVersion,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> Profiled:
    """Profile ``path``'s rows and ``version``'s predictions on them, and keep the profile
    with the version (``progress`` hears each batch of rows predicted)."""
    kinds = input_kinds(version.signature)
    frame = load_dataset(path, columns=kinds).frame
    check_columns(frame, list(kinds), version, path.name)
    inputs_from_frame(frame, version.signature, path.name)  # numbers where it takes numbers
    predictions, task, output = _predictions(access, version, frame, progress)
    profile = table_profile(frame, kinds, predictions, task)
    stored, _ = access.artifacts.put_bytes(compact_json(profile))
    replaced = version.has_artifact(PROFILE_ROLE)
    kept = access.registry.attach(
        version.name, version.version, Artifact.of(PROFILE_ROLE, "json", stored)
    )
    return Profiled(kept, len(frame), kinds, output if predictions is not None else None, replaced)


def input_kinds(signature: Signature) -> dict[str, ColumnKind]:
    """Each input column and how it is profiled: text as categories (datetimes apart),
    everything else as numbers."""
    if not is_columnar(signature):
        return dict.fromkeys(signature.feature_names or (), "numeric")
    kinds: dict[str, ColumnKind] = {}
    for spec in signature.inputs:
        if spec.datatype != "BYTES":
            kinds[spec.name] = "numeric"
        else:
            kinds[spec.name] = "datetime" if spec.datetime else "categorical"
    return kinds


def check_columns(
    frame: pd.DataFrame, columns: list[str], version: ModelVersion, source: str
) -> None:
    """The table's columns are the version's inputs, no more, no fewer."""
    if not columns:
        raise InvalidData(
            f"{version.name}@{version.version}'s matrix input has no feature_names, so "
            f"columns of {source} cannot be matched to it; register it with feature_names"
        )
    missing = [name for name in columns if name not in frame.columns]
    extra = [str(name) for name in frame.columns if name not in columns]
    if missing or extra:
        parts = [f"missing column(s) {', '.join(missing)}"] if missing else []
        parts += [f"extra column(s) {', '.join(extra)}"] if extra else []
        raise InvalidData(
            f"{source} does not hold {version.name}@{version.version}'s inputs: "
            f"{'; '.join(parts)} (its inputs: {', '.join(columns)})",
            missing=missing,
            extra=extra,
        )


def _predictions(
    access: RegistryAccess,
    version: ModelVersion,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None,
) -> tuple[Predictions | None, Task | None, str | None]:
    """The version's predictions on the rows, in the output the monitor reads them from."""
    task, output = task_of(version.signature)
    if output is None:
        return None, None, None
    runtime = open_runtime(access, version)
    try:
        batches = predict_batches(runtime, version.signature, frame, progress=progress)
    finally:
        runtime.close()
    values = np.concatenate([np.asarray(batch[output]) for batch in batches])
    values = values.reshape(len(frame), -1)
    if values.shape[1] != 1:  # several numbers a row: no one prediction to profile
        return None, None, output
    if task == "classification":
        given = [batch["probabilities"] for batch in batches if "probabilities" in batch]
        scores = np.concatenate(given) if len(given) == len(batches) else None
        return Predictions(label=values[:, 0], probabilities=scores), task, output
    return Predictions(value=values[:, 0].astype(np.float64)), task, output
