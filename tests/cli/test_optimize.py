"""`servewell optimize`: the before/after table, the JSON report in the new version's
metrics, and every refusal exiting non-zero with the registry unchanged."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from typer.testing import Result

Invoke = Callable[..., Result]
State = Callable[[], object]
QUICK = ("--runs", "5", "--batches", "2")


@pytest.fixture(scope="session")
def iris_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An MLP fitted on named iris columns (joblib) and the labelled rows (CSV)."""
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_iris(as_frame=True)
    features = data.data.astype(np.float32)
    model = make_pipeline(StandardScaler(), MLPClassifier((128, 64), max_iter=3000, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(features, data.target)
    folder = tmp_path_factory.mktemp("cli-optimize")
    joblib.dump(model, folder / "iris.joblib")
    features.assign(species=data.target).to_csv(folder / "iris.csv", index=False)
    return {"model": folder / "iris.joblib", "eval": folder / "iris.csv"}


@pytest.fixture
def registered(invoke: Invoke, iris_files: dict[str, Path]) -> None:
    result = invoke("register", str(iris_files["model"]), "--name", "iris", "--trust")
    assert result.exit_code == 0, result.output


def _optimize(invoke: Invoke, iris_files: dict[str, Path], ref: str, *args: str) -> Result:
    """Options given later win, so ``args`` may override the evaluation defaults."""
    defaults = ("--eval", str(iris_files["eval"]), "--target", "species", *QUICK)
    return invoke("optimize", ref, *defaults, *args)


def test_prints_the_table_and_registers_a_child(
    invoke: Invoke, iris_files: dict[str, Path], registered: None
) -> None:
    result = _optimize(
        invoke, iris_files, "iris@1", "--quantize", "dynamic-int8", "--alias", "staging"
    )
    assert result.exit_code == 0, result.output
    for text in ("before", "after", "size", "accuracy", "p50", "p99", "throughput", "agreement"):
        assert text in result.stdout
    words = " ".join(result.stdout.split())  # Rich wraps lines at the terminal's width
    assert "registered iris@2 (parent iris@1, dynamic-int8), alias staging" in words

    shown = json.loads(invoke("models", "show", "iris@staging", "--json").stdout)
    assert shown["version"] == 2
    assert shown["lineage"] == ["iris@2", "iris@1"]
    report = shown["metrics"]["optimization"]
    assert report["quantization"] == "dynamic-int8"
    assert report["after"]["size_bytes"] < report["before"]["size_bytes"]
    assert shown["metrics"]["accuracy"] == report["after"]["metrics"]["accuracy"]


def test_json_report(invoke: Invoke, iris_files: dict[str, Path], registered: None) -> None:
    result = _optimize(invoke, iris_files, "iris@1", "--quantize", "none", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["registered"] == "iris@2"
    assert report["label_agreement"] == 1.0
    assert report["passed"] is True


def test_static_int8_options_are_reported_and_stdout_stays_json(
    invoke: Invoke, iris_files: dict[str, Path], registered: None
) -> None:
    result = _optimize(
        invoke, iris_files, "iris@1", "--quantize", "static-int8",
        "--calibration", str(iris_files["eval"]), "--calibration-method", "entropy",
        "--per-tensor", "--operators", "MatMul", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the entropy calibrator's progress is not in it
    assert report["int8"] == {
        "operators": ["MatMul"],
        "per_channel": False,
        "calibration_method": "entropy",
    }
    assert report["quantized_operators"] == ["MatMul"]
    assert report["narrowed"] is None  # a float32 model
    assert report["registered"] == "iris@2"


def test_a_missed_gate_says_why_and_registers_nothing(
    invoke: Invoke, iris_files: dict[str, Path], registered: None, registry_state: State
) -> None:
    before = registry_state()
    result = _optimize(
        invoke, iris_files, "iris@1", "--quantize", "none", "--min-accuracy", "0.999"
    )
    assert result.exit_code == 5
    error = " ".join(result.stderr.split())
    assert "below --min-accuracy 0.9990" in error
    assert "nothing registered" in error
    assert "before" in result.stdout  # the table still shows what was measured
    assert registry_state() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("iris@7",), 4, "has no version 7"),
        (("iris@1", "--quantize", "int4"), 2, "unknown quantization 'int4'"),
        (("iris@1", "--target", "colour"), 2, "no target column 'colour'"),
        (("iris@1", "--quantize", "static-int8"), 2, "give --calibration DATA"),
        (("iris@1", "--to", "tflite"), 2, "converts to 'onnx' only"),
        (("iris@1", "--min-accuracy", "5"), 2, "--min-accuracy is 5.0; give a fraction 0 to 1"),
        (("iris@1", "--min-accuracy", "nan"), 2, "--min-accuracy is nan; give a fraction 0 to 1"),
        (
            ("iris@1", "--max-accuracy-drop", "-0.1"),
            2,
            "--max-accuracy-drop is -0.1; give a fraction 0 to 1",
        ),
        (("iris@1", "--quantize", "fp16", "--per-tensor"), 2, "applies to dynamic-int8 and"),
        (
            ("iris@1", "--calibration-method", "entropy"),
            2,
            "--calibration-method applies to static-int8 only, not to dynamic-int8",
        ),
        (("iris@1", "--operators", "Softmax"), 2, "dynamic-int8 has no int8 form for Softmax"),
        (("iris@1", "--operators", "Gemm"), 2, "dynamic-int8 has no int8 form for Gemm"),
        (
            ("iris@1", "--quantize", "static-int8", "--operators", "Conv"),
            2,
            "static-int8 cannot shrink this model: none of its operators (",
        ),
    ],
)
def test_bad_input_exits_non_zero_and_changes_nothing(
    invoke: Invoke,
    iris_files: dict[str, Path],
    registered: None,
    registry_state: State,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    before = registry_state()
    result = _optimize(invoke, iris_files, *args)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.stderr.split())
    assert registry_state() == before
