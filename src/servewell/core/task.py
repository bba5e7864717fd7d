"""What a model predicts: one of a set of classes, or a number; and which output of a
signature holds the prediction."""

from __future__ import annotations

from typing import Literal

from servewell.core.signature import Signature

Task = Literal["classification", "regression"]


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
