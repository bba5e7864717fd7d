"""The artifact a trained pipeline will be served as, and its metrics on the validation rows.

Before registering, the pipeline is converted to ONNX and the conversion checked on the
validation rows (:func:`~servewell.registration.convert.convert_sklearn`: float32, else
float64, else none). Whichever artifact will serve — the conversion, or the scikit-learn
pipeline itself — is then scored on those rows through its runtime, as
``servewell evaluate`` scores it, and those are the metrics the version is registered
with: the figures a user reads are the served model's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.errors import ConversionFailed
from servewell.registration.convert import Conversion, convert_sklearn, loaded_conversion
from servewell.runtime.base import Runtime
from servewell.runtime.sklearn import SklearnRuntime
from servewell.training.evaluate import Metrics, evaluate_runtime
from servewell.training.progress import StageLog
from servewell.training.result import PipelineResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Served:
    """What will serve a trained pipeline, and how it scores on the validation rows."""

    conversion: Conversion | None
    """The ONNX conversion, or None: the scikit-learn pipeline serves."""
    metrics: Metrics

    @property
    def format(self) -> str:
        return "ONNX" if self.conversion is not None else "scikit-learn"


def choose_served(log: StageLog, result: PipelineResult) -> Served:
    """The ``convert`` stage: convert, check on the validation rows, score what will serve."""
    with log.stage("convert") as summary:
        conversion, refusal = _convert(result)
        with _serving_runtime(result, conversion) as runtime:
            metrics = _score(runtime, result)
        served = Served(conversion, metrics)
        summary.rows_in = summary.rows_out = len(result.validation_truth)
        summary.columns_in = summary.columns_out = len(result.plan.inputs)
        if conversion is None:
            summary.lines = [f"serves through scikit-learn: {refusal}"]
        else:
            summary.lines = [f"serves {conversion.describe()} (validation rows)"]
        summary.lines.append(_compare(metrics, result.metrics))
    return served


def _convert(result: PipelineResult) -> tuple[Conversion | None, str]:
    """The faithful conversion, or None and why there is none."""
    scale = _target_scale(result)
    try:
        return convert_sklearn(
            result.model, result.signature, result.sample, target_scale=scale
        ), ""
    except ConversionFailed as exc:
        logger.warning("serving through scikit-learn, without ONNX: %s", exc.message)
        return None, exc.message


def _target_scale(result: PipelineResult) -> float | None:
    if result.task != "regression":
        return None
    return float(np.std(np.asarray(result.validation_truth, dtype=np.float64)))


@contextmanager
def _serving_runtime(result: PipelineResult, conversion: Conversion | None) -> Iterator[Runtime]:
    if conversion is None:
        yield SklearnRuntime.from_estimator(result.model, result.signature)
        return
    with loaded_conversion(conversion.onnx_bytes, result.signature) as runtime:
        yield runtime


def _score(runtime: Runtime, result: PipelineResult) -> Metrics:
    frame = result.validation_frame
    assert frame is not None  # train_pipeline always keeps the validation split
    target = result.config.target
    assert target is not None
    return evaluate_runtime(runtime, frame, target, positive_label=result.positive_label).metrics


def _compare(served: Metrics, pipeline: Metrics) -> str:
    """``served metrics: mae 45.1203 (the pipeline's 45.1201)``, or that they are equal."""
    mine, theirs = served.headline(), pipeline.headline()
    differ = [n for n, v in mine.items() if not _close(v, theirs.get(n, float("nan")))]
    if not differ:
        return "served metrics equal the pipeline's (registered as the version's)"
    text = ", ".join(f"{n} {mine[n]:.4f} (the pipeline's {theirs[n]:.4f})" for n in differ)
    return f"served metrics (registered as the version's): {text}"


def _close(a: Any, b: Any) -> bool:
    return bool(np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))
