"""The signature a version is registered with: what its runtime reads from the file (or
what the user declared), proven by one prediction on inputs of that signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servewell.core.signature import Signature
from servewell.errors import InvalidArtifact, InvalidInput, InvalidSignature, ModelFailed
from servewell.runtime import Runtime


def proven_signature(runtime: Runtime, path: Path) -> Signature:
    """The signature, proven by one prediction: a model that cannot run is not registered."""
    signature = runtime.describe()
    try:
        runtime.warm_up()
    except (InvalidInput, ModelFailed) as exc:
        raise InvalidArtifact(
            f"{path.name} does not run on inputs of its signature: {exc.message}"
        ) from exc
    return signature


def check_class_labels(estimator: Any, signature: Signature) -> None:
    """A classifier's class_labels name each of its classes, in order."""
    classes = getattr(estimator, "classes_", None)
    labels = signature.class_labels
    if classes is not None and labels is not None and len(labels) != len(classes):
        raise InvalidSignature(
            f"class_labels has {len(labels)} labels, but the model has {len(classes)} classes "
            f"({', '.join(map(str, classes))})"
        )
