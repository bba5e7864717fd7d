"""scikit-learn estimators saved with joblib or pickle.

Loading a pickle runs arbitrary code: the registry only accepts one with the user's
explicit ``--trust``, and the artifact's sha256 is checked before it gets here.
Outputs use skl2onnx's names (``label`` and ``probabilities`` for classifiers,
``variable`` for regressors) so a version and its ONNX conversion answer alike.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.signature import Signature, TensorSpec
from servewell.errors import InvalidArtifact, InvalidInput, ModelFailed
from servewell.runtime.base import Array, as_declared, sample_inputs, to_text

INPUT_NAME = "input"


class SklearnRuntime:
    """Runs a fitted scikit-learn estimator (or Pipeline) in-process."""

    platform = "scikit-learn"
    may_block = False

    def __init__(self, path: Path, signature: Signature | None = None) -> None:
        self.path = path
        self.signature = signature
        self._estimator: Any = None

    @classmethod
    def from_estimator(cls, estimator: Any, signature: Signature | None = None) -> SklearnRuntime:
        """A runtime around an estimator already in memory (fresh from training)."""
        runtime = cls(Path("<memory>"), signature or signature_from_estimator(estimator))
        runtime._estimator = estimator
        return runtime

    def load(self) -> None:
        import joblib

        try:
            estimator = joblib.load(self.path)
        except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as exc:
            reason = str(exc) or "it ends early"  # EOFError() has no message
            raise InvalidArtifact(
                f"{self.path.name} is not a readable joblib/pickle file ({reason})"
            ) from exc
        except (AttributeError, ModuleNotFoundError, ImportError) as exc:
            raise InvalidArtifact(
                f"{self.path.name} needs code that is not installed here: {exc}"
            ) from exc
        if not hasattr(estimator, "predict"):
            raise InvalidArtifact(
                f"{self.path.name} holds a {type(estimator).__name__}, "
                "not a fitted estimator with predict()"
            )
        self._estimator = estimator
        self.signature = self.signature or signature_from_estimator(estimator)

    @property
    def estimator(self) -> Any:
        if self._estimator is None:
            raise RuntimeError("SklearnRuntime.load() was not called")
        return self._estimator

    def warm_up(self) -> None:
        self.predict(sample_inputs(self.describe()))

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        estimator = self.estimator
        features = to_estimator_input(self.describe(), inputs)
        try:
            with warnings.catch_warnings():
                # Fitted on an array, given a DataFrame (or the other way round): the
                # columns are in signature order either way.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                warnings.filterwarnings("ignore", message="X has feature names")
                if is_classifier(estimator):
                    outputs = {
                        "label": _labels(estimator.predict(features)),
                        "probabilities": np.asarray(
                            estimator.predict_proba(features), dtype=np.float32
                        ),
                    }
                else:
                    values = np.asarray(estimator.predict(features), dtype=np.float32)
                    outputs = {"variable": values.reshape(len(values), -1)}
        except ValueError as exc:
            raise InvalidInput(f"the model rejected the input: {exc}") from exc
        except Exception as exc:
            raise ModelFailed(f"{type(estimator).__name__}.predict failed: {exc}") from exc
        return as_declared(self.describe(), outputs)

    def describe(self) -> Signature:
        self.estimator  # noqa: B018 - raises unless loaded
        assert self.signature is not None
        return self.signature

    def close(self) -> None:
        self._estimator = None


def to_estimator_input(signature: Signature, inputs: Mapping[str, Array]) -> Any:
    """What ``estimator.predict`` takes.

    A *columnar* signature (one input per raw column, each ``[-1]`` or ``[-1, 1]``, as the
    training pipeline registers) becomes a DataFrame, so ColumnTransformers can select
    columns by name; so does a matrix whose signature names its features. A matrix with
    no feature names stays an array. Floats are float64, as scikit-learn computes (and
    the pipeline was validated): a scaler fed float32 would compute in float32.
    """
    import pandas as pd

    if is_columnar(signature):
        return pd.DataFrame(
            {spec.name: _column(spec.name, inputs[spec.name]) for spec in signature.inputs}
        )
    matrix = _float64(inputs[INPUT_NAME])
    if signature.feature_names:
        return pd.DataFrame(matrix, columns=list(signature.feature_names))
    return matrix


def _float64(array: Array) -> Array:
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def is_columnar(signature: Signature) -> bool:
    """One input per raw column, named after it."""
    return not (len(signature.inputs) == 1 and signature.inputs[0].name == INPUT_NAME)


def _column(name: str, array: Array) -> Array:
    if array.size != len(array):
        raise InvalidInput(
            f"input '{name}' holds {array.size // max(len(array), 1)} values per row; a "
            "scikit-learn model takes one column per input, or one matrix named 'input'"
        )
    flat = array.reshape(len(array))
    # A missing text value as pandas (and so the pipeline, in training) holds one: NaN.
    return to_text(name, flat, missing=np.nan) if flat.dtype == np.object_ else _float64(flat)


def is_classifier(estimator: Any) -> bool:
    return hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")


def signature_from_estimator(estimator: Any) -> Signature:
    """Infer a signature from a fitted estimator's ``n_features_in_`` and ``classes_``."""
    n_features = getattr(estimator, "n_features_in_", None)
    if not isinstance(n_features, int | np.integer):
        raise InvalidArtifact(
            f"cannot infer a signature from {type(estimator).__name__}: it has no "
            "n_features_in_ (is it fitted?); give one with --signature"
        )
    names = getattr(estimator, "feature_names_in_", None)
    feature_names = tuple(str(name) for name in names) if names is not None else None
    inputs = (TensorSpec(name=INPUT_NAME, datatype="FP32", shape=(-1, int(n_features))),)
    if is_classifier(estimator):
        classes = [_plain(label) for label in estimator.classes_]
        label_type = "INT64" if all(isinstance(c, int) for c in classes) else "BYTES"
        outputs: tuple[TensorSpec, ...] = (
            TensorSpec(name="label", datatype=label_type, shape=(-1,)),
            TensorSpec(name="probabilities", datatype="FP32", shape=(-1, len(classes))),
        )
        return Signature(
            inputs=inputs,
            outputs=outputs,
            feature_names=feature_names,
            class_labels=tuple(classes),
        )
    outputs = (TensorSpec(name="variable", datatype="FP32", shape=(-1, 1)),)
    return Signature(inputs=inputs, outputs=outputs, feature_names=feature_names)


def _plain(label: Any) -> str | int:
    if isinstance(label, np.integer | int) and not isinstance(label, bool | np.bool_):
        return int(label)
    return str(label)


def _labels(values: Any) -> Array:
    array = np.asarray(values)
    if array.dtype.kind in ("i", "u"):
        return array.astype(np.int64)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    return np.array([str(v).encode("utf-8") for v in array], dtype=np.object_)
