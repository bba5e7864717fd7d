"""A model from ``servewell train`` carries its validation split, so ``optimize`` needs
no ``--eval``: it judges the version on the rows the training pipeline held out."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from servewell.bootstrap import Services
from servewell.optimize.benchmark import BenchmarkPlan
from servewell.optimize.result import OptimizeOptions
from servewell.optimize.run import optimize_version, register_optimized
from servewell.training.config import PipelineConfig
from servewell.training.data import dataset_from_frame
from servewell.training.holdout import read_attachment_table
from servewell.training.run import run_pipeline

QUICK = BenchmarkPlan(single_runs=5, batches=2, rounds=2)


def test_the_validation_split_is_attached_with_inputs_and_target(
    sqlite_services: Services, frame: pd.DataFrame, make_config: Callable[..., PipelineConfig]
) -> None:
    result = run_pipeline(dataset_from_frame(frame, "t"), make_config(), sqlite_services)
    version = result.version
    assert version is not None
    validation = read_attachment_table(sqlite_services, version, "validation.csv")
    inputs = [spec.name for spec in version.signature.inputs]
    assert list(validation.columns) == [*inputs, "clicked"]
    assert len(validation) == len(result.validation_truth)
    assert list(validation["clicked"]) == list(result.validation_truth)


def test_optimize_needs_no_eval_for_a_pipeline_trained_model(
    sqlite_services: Services, frame: pd.DataFrame, make_config: Callable[..., PipelineConfig]
) -> None:
    # Numbers only: skl2onnx cannot convert the datetime columns' derived features, and
    # the conversion of int + float + category columns fails to load (a Concat of double
    # and float), which is convert.py's to fix, not this test's.
    numeric = frame.drop(columns=["timestamp", "last_click_at", "device"])
    result = run_pipeline(dataset_from_frame(numeric, "t"), make_config(), sqlite_services)
    assert result.version is not None

    optimized = optimize_version(
        sqlite_services,
        result.version.ref,
        OptimizeOptions(quantize="none", min_accuracy=0.5, benchmark=QUICK),
    )

    assert optimized.evaluation == "clicks@validation.csv"
    assert optimized.evaluation_rows == len(result.validation_truth)
    assert optimized.before.accuracy == result.metrics.headline()["accuracy"]
    assert optimized.label_agreement >= 0.99
    child = register_optimized(sqlite_services, optimized)
    assert child.parent == result.version.ref
    assert child.has_artifact("validation.csv")  # carried over: the child optimizes alike
