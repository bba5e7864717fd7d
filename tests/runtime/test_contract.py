"""One suite every runtime must pass (scikit-learn's parametrize_with_checks, in small)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from servewell.errors import InvalidArtifact
from servewell.runtime import Runtime, create_runtime, sample_inputs

FORMATS = ["onnx", "sklearn"]


def _runtime(format: str, model_files: dict[str, Path]) -> Runtime:
    path = model_files["onnx" if format == "onnx" else "joblib"]
    return create_runtime(format, path)


@pytest.mark.parametrize("format", FORMATS)
def test_describes_a_classifier_signature(format: str, model_files: dict[str, Path]) -> None:
    runtime = _runtime(format, model_files)
    runtime.load()
    signature = runtime.describe()
    assert [(s.name, s.datatype, s.shape) for s in signature.inputs] == [("input", "FP32", (-1, 4))]
    assert [s.name for s in signature.outputs] == ["label", "probabilities"]
    assert signature.class_labels == (0, 1, 2)


@pytest.mark.parametrize("format", FORMATS)
def test_predicts_a_batch_with_one_output_row_per_input_row(
    format: str, model_files: dict[str, Path], iris: tuple[np.ndarray, np.ndarray]
) -> None:
    runtime = _runtime(format, model_files)
    runtime.load()
    runtime.warm_up()
    features, target = iris
    outputs = runtime.predict({"input": features})
    assert outputs["label"].shape == (150,)
    assert outputs["label"].dtype == np.int64
    assert outputs["probabilities"].shape == (150, 3)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(outputs["label"] == target) > 0.9
    runtime.close()


def test_runtimes_agree(model_files: dict[str, Path], iris: tuple[np.ndarray, np.ndarray]) -> None:
    answers = []
    for format in FORMATS:
        runtime = _runtime(format, model_files)
        runtime.load()
        answers.append(runtime.predict({"input": iris[0]}))
    np.testing.assert_array_equal(answers[0]["label"], answers[1]["label"])
    np.testing.assert_allclose(answers[0]["probabilities"], answers[1]["probabilities"], atol=1e-5)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_refuses_a_damaged_file(
    format: str, damage: str, model_files: dict[str, Path], tmp_path: Path
) -> None:
    original = model_files["onnx" if format == "onnx" else "joblib"].read_bytes()
    broken = {
        "truncated": original[: len(original) // 2],
        "garbage": b"\x00\x01 not a model at all " * 10,
        "empty": b"",
    }[damage]
    path = tmp_path / f"broken.{'onnx' if format == 'onnx' else 'joblib'}"
    path.write_bytes(broken)
    runtime = create_runtime(format, path)
    with pytest.raises(InvalidArtifact):
        runtime.load()


@pytest.mark.parametrize("format", FORMATS)
def test_sample_inputs_match_the_signature(format: str, model_files: dict[str, Path]) -> None:
    runtime = _runtime(format, model_files)
    runtime.load()
    batch = sample_inputs(runtime.describe(), rows=3)
    assert batch["input"].shape == (3, 4)
    assert runtime.predict(batch)["label"].shape == (3,)
