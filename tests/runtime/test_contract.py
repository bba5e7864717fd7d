"""One suite every runtime must pass (scikit-learn's parametrize_with_checks, in small)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from servewell.core.signature import Signature
from servewell.errors import InvalidArtifact
from servewell.runtime import Runtime, create_runtime, sample_inputs
from servewell.runtime.bundle import write_bundle
from serving_models import PYTHON_MODELS
from torch_models import require_torch

FORMATS = ["onnx", "sklearn", "torch", "python"]
SUFFIXES = {"onnx": "onnx", "sklearn": "joblib", "torch": "pt", "python": "py"}
#: A torch module or a Python model does not describe itself: its runtime is given the
#: iris signature.
IRIS_SIGNATURE = Signature.from_dict(
    {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
        "class_labels": [0, 1, 2],
    }
)


@pytest.fixture(scope="session")
def torch_iris(
    tmp_path_factory: pytest.TempPathFactory, iris: tuple[np.ndarray, np.ndarray]
) -> Path:
    """A small torch MLP fitted on iris, saved whole with torch.save."""
    require_torch()
    import torch

    from torch_modules import MLP, Affine

    torch.manual_seed(0)
    features, target = iris
    mean, std = features.mean(0), features.std(0)
    x = torch.tensor((features - mean) / std)
    model = torch.nn.Sequential(Affine(1 / std, -mean / std), MLP())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model[1](x), torch.tensor(target))
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("torch-iris") / "iris.pt"
    torch.save(model.eval(), str(path))
    return path


@pytest.fixture(scope="session")
def python_iris(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Path:
    """python_models/iris.py with the fitted classifier in its artifacts folder, bundled."""
    folder = tmp_path_factory.mktemp("python-iris")
    (folder / "artifacts").mkdir()
    shutil.copy(model_files["joblib"], folder / "artifacts" / "model.joblib")
    return write_bundle(PYTHON_MODELS / "iris.py", folder / "artifacts", None, folder / "iris.py")


def _path(format: str, model_files: dict[str, Path], request: pytest.FixtureRequest) -> Path:
    if format in ("torch", "python"):
        return Path(request.getfixturevalue(f"{format}_iris"))
    return model_files[SUFFIXES[format]]


def _create(format: str, path: Path) -> Runtime:
    described = format in ("torch", "python")
    return create_runtime(format, path, signature=IRIS_SIGNATURE if described else None)


def _runtime(format: str, model_files: dict[str, Path], request: pytest.FixtureRequest) -> Runtime:
    return _create(format, _path(format, model_files, request))


@pytest.mark.parametrize("format", FORMATS)
def test_describes_a_classifier_signature(
    format: str, model_files: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    runtime = _runtime(format, model_files, request)
    runtime.load()
    signature = runtime.describe()
    assert [(s.name, s.datatype, s.shape) for s in signature.inputs] == [("input", "FP32", (-1, 4))]
    assert [s.name for s in signature.outputs] == ["label", "probabilities"]
    assert signature.class_labels == (0, 1, 2)


@pytest.mark.parametrize("format", FORMATS)
def test_predicts_a_batch_with_one_output_row_per_input_row(
    format: str,
    model_files: dict[str, Path],
    iris: tuple[np.ndarray, np.ndarray],
    request: pytest.FixtureRequest,
) -> None:
    runtime = _runtime(format, model_files, request)
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


def test_runtimes_agree(
    model_files: dict[str, Path],
    iris: tuple[np.ndarray, np.ndarray],
    request: pytest.FixtureRequest,
) -> None:
    """The scikit-learn model and its ONNX conversion (the torch model is another fit)."""
    answers = []
    for format in ("onnx", "sklearn"):
        runtime = _runtime(format, model_files, request)
        runtime.load()
        answers.append(runtime.predict({"input": iris[0]}))
    np.testing.assert_array_equal(answers[0]["label"], answers[1]["label"])
    np.testing.assert_allclose(answers[0]["probabilities"], answers[1]["probabilities"], atol=1e-5)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_refuses_a_damaged_file(
    format: str,
    damage: str,
    model_files: dict[str, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    original = _path(format, model_files, request).read_bytes()
    broken = {
        "truncated": original[: len(original) // 2],
        "garbage": b"\x00\x01 not a model at all " * 10,
        "empty": b"",
    }[damage]
    path = tmp_path / f"broken.{SUFFIXES[format]}"
    path.write_bytes(broken)
    runtime = _create(format, path)
    with pytest.raises(InvalidArtifact):
        runtime.load()


@pytest.mark.parametrize("format", FORMATS)
def test_sample_inputs_match_the_signature(
    format: str, model_files: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    runtime = _runtime(format, model_files, request)
    runtime.load()
    batch = sample_inputs(runtime.describe(), rows=3)
    assert batch["input"].shape == (3, 4)
    assert runtime.predict(batch)["label"].shape == (3,)
