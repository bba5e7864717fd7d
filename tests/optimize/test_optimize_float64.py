"""`optimize` on a float64 classifier graph built with onnx.helper (no converter in the
way): every method narrows it to float32 first, keeps its FP64 inputs and outputs, and
registers a child that serves what its report promised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graph_models import FEATURES, mlp_classifier, self_labelled_rows, signature
from servewell.bootstrap import Services
from servewell.errors import GateFailed
from servewell.optimize.benchmark import BenchmarkPlan
from servewell.optimize.result import OptimizeOptions
from servewell.optimize.run import optimize_version, register_optimized
from servewell.registration.register import RegisterOptions, register_file
from servewell.serving.loading import open_runtime

QUICK = BenchmarkPlan(single_runs=5, batches=2, rounds=2)
SIGNATURE = signature(np.float64)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("float64")
    model = mlp_classifier(folder / "float64.onnx")
    return {"model": model, "rows": self_labelled_rows(model, folder / "rows.csv")}


def _options(files: dict[str, Path], method: str, **changes: object) -> OptimizeOptions:
    values: dict[str, object] = {
        "quantize": method,
        "eval_path": files["rows"],
        "target": "y",
        "calibration_path": files["rows"] if method == "static-int8" else None,
        "min_accuracy": 0.95,
        "max_accuracy_drop": 0.05,
        "benchmark": QUICK,
        **changes,
    }
    return OptimizeOptions(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["dynamic-int8", "static-int8", "fp16"])
def test_every_method_works_on_a_float64_graph(
    sqlite_services: Services, files: dict[str, Path], method: str
) -> None:
    source = register_file(
        sqlite_services, files["model"], "float64", options=RegisterOptions(signature=SIGNATURE)
    )

    result = optimize_version(sqlite_services, source.ref, _options(files, method))

    assert result.passed, result.failures
    assert result.before.accuracy == 1.0
    assert result.quantized_operators == ("MatMul",)
    assert result.after.size_bytes < 0.6 * result.before.size_bytes
    assert result.narrowed is not None
    assert result.narrowed.narrowing.inputs == ("input",)
    assert result.narrowed.narrowing.outputs == ("probabilities",)
    assert result.narrowed.label_agreement == 1.0
    child = register_optimized(sqlite_services, result)
    assert child.signature == SIGNATURE
    runtime = open_runtime(sqlite_services, child)
    frame = pd.read_csv(files["rows"])
    outputs = runtime.predict({"input": frame[list(FEATURES)].to_numpy(np.float64)})
    runtime.close()
    assert outputs["probabilities"].dtype == np.float64
    assert np.mean(outputs["label"] == frame["y"]) == child.metrics["accuracy"]


def test_none_keeps_float64(sqlite_services: Services, files: dict[str, Path]) -> None:
    source = register_file(
        sqlite_services, files["model"], "float64", options=RegisterOptions(signature=SIGNATURE)
    )
    result = optimize_version(sqlite_services, source.ref, _options(files, "none"))
    assert result.passed
    assert result.narrowed is None  # graph optimizations only: nothing to narrow for
    assert result.max_abs_diff < 1e-12


def test_int8_that_makes_a_tiny_model_larger_fails_the_gate(
    sqlite_services: Services, files: dict[str, Path], tmp_path: Path
) -> None:
    tiny = mlp_classifier(tmp_path / "tiny.onnx", hidden=2)  # 14 weights: less than int8 adds
    source = register_file(
        sqlite_services, tiny, "tiny", options=RegisterOptions(signature=SIGNATURE)
    )
    options = _options(files, "static-int8", min_accuracy=0.0, max_accuracy_drop=1.0)

    result = optimize_version(sqlite_services, source.ref, options)

    assert not result.passed
    assert result.after.size_bytes >= result.before.size_bytes
    assert result.failures == [
        f"static-int8 made the file larger ({result.before.size_bytes:,} -> "
        f"{result.after.size_bytes:,} bytes): the model has too few weights for it; "
        "--quantize none keeps them as they are"
    ]
    with pytest.raises(GateFailed):
        register_optimized(sqlite_services, result)
    assert [v.version for v in sqlite_services.registry.list_versions("tiny")] == [1]
