"""What the target column asks for: the task, its classes, and the positive one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from servewell.core.task import Task
from servewell.errors import InvalidConfig, InvalidData
from servewell.training.config import PipelineConfig

#: A numeric target with more distinct values than this is a regression target.
MAX_CLASSES = 20


def infer_task(target: pd.Series, config: PipelineConfig) -> Task:
    """The configured task, or regression for fractional or many-valued numbers."""
    if config.task != "auto":
        return config.task
    present = target.dropna()
    if present.dtype.kind == "f" and not (present == np.round(present)).all():
        return "regression"
    if present.dtype.kind in "iuf" and present.nunique() > MAX_CLASSES:
        return "regression"
    return "classification"


def class_labels(target: pd.Series, name: str, task: Task) -> tuple[Any, ...] | None:
    """A classifier's classes, sorted; refused when one class or a one-row class."""
    if task == "regression":
        return None
    counts = target.value_counts()
    if len(counts) < 2:
        only = counts.index[0] if len(counts) else "nothing"
        raise InvalidData(
            f"target '{name}' has one class only ('{only}' in all {len(target)} rows); "
            "a classifier needs at least two",
            column=name,
        )
    rare = counts[counts < 2]
    if len(rare):
        raise InvalidData(
            f"class '{rare.index[0]}' of target '{name}' has only 1 row; each class needs at "
            "least 2 to appear on both sides of the train/validation split",
            column=name,
        )
    return tuple(sorted(counts.index.tolist()))


def positive_label(config: PipelineConfig, labels: tuple[Any, ...] | None) -> Any:
    """The class binary metrics are about: the configured one, else the second."""
    if labels is None or len(labels) != 2:
        return None
    if config.positive_label is None:
        return labels[1]
    for label in labels:
        if str(label) == str(config.positive_label):
            return label
    raise InvalidConfig(
        f"positive_label '{config.positive_label}' is not a class of the target "
        f"({', '.join(map(str, labels))})"
    )
