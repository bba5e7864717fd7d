"""The torch format: TorchScript and pickled modules, registered with a signature and
served by TorchRuntime as the module itself answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from servewell.bootstrap import Services
from servewell.core.signature import Signature
from servewell.errors import (
    InvalidArtifact,
    SignatureRequired,
    UntrustedArtifact,
)
from servewell.registration.register import RegisterOptions, register_file
from servewell.runtime import create_runtime, detect_format
from servewell.runtime.factory import needs_trust
from servewell.runtime.torch import TorchRuntime, is_torchscript
from servewell.serving.loading import open_runtime
from torch_models import CLASSES, blobs, require_torch, save_both, signature_dict, train_mlp

SIGNATURE = Signature.from_dict(signature_dict())


@pytest.fixture(scope="session")
def mlp() -> Any:
    require_torch()
    return train_mlp()


@pytest.fixture(scope="session")
def files(mlp: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_both(mlp, tmp_path_factory.mktemp("torch-files"))


def _module_labels(module: Any, features: np.ndarray) -> list[bytes]:
    import torch

    with torch.no_grad():
        indexes = module(torch.tensor(features)).argmax(dim=1).numpy()
    return [CLASSES[i].encode() for i in indexes]


def _register(services: Services, path: Path, **kwargs: Any) -> Any:
    signature = kwargs.pop("signature", SIGNATURE)
    return register_file(
        services, path, "bands", options=RegisterOptions(signature=signature), **kwargs
    )


def test_tells_torchscript_from_a_pickle_by_its_contents(files: dict[str, Path]) -> None:
    assert is_torchscript(files["torchscript"])
    assert not is_torchscript(files["pickle"])
    assert detect_format(files["torchscript"]) == detect_format(files["pickle"]) == "torch"
    assert not needs_trust("torch", files["torchscript"])
    assert needs_trust("torch", files["pickle"])


@pytest.mark.parametrize("kind", ["torchscript", "pickle"])
def test_answers_with_the_modules_labels(kind: str, files: dict[str, Path], mlp: Any) -> None:
    runtime = create_runtime("torch", files[kind], signature=SIGNATURE)
    runtime.load()
    runtime.warm_up()
    features, target = blobs(200, seed=1)
    outputs = runtime.predict({"input": features})
    assert list(outputs["label"]) == _module_labels(mlp, features)
    assert outputs["probabilities"].shape == (200, 3)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    truth = [CLASSES[i].encode() for i in target]
    assert np.mean([a == b for a, b in zip(outputs["label"], truth, strict=True)]) > 0.9
    runtime.close()


def test_a_signature_without_class_labels_names_forwards_outputs(files: dict[str, Path]) -> None:
    logits = Signature.from_dict(
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "scores", "datatype": "FP64", "shape": [-1, 3]}],
        }
    )
    runtime = TorchRuntime(files["torchscript"], logits)
    runtime.load()
    outputs = runtime.predict({"x": blobs(5)[0]})
    assert list(outputs) == ["scores"]
    assert outputs["scores"].shape == (5, 3)
    assert outputs["scores"].dtype == np.float64


def test_registers_torchscript_without_trust_and_serves_it(
    sqlite_services: Services, files: dict[str, Path], mlp: Any
) -> None:
    version = _register(sqlite_services, files["torchscript"])
    assert (version.format, version.version, version.signature) == ("torch", 1, SIGNATURE)
    runtime = open_runtime(sqlite_services, version)
    features = blobs(50, seed=2)[0]
    assert list(runtime.predict({"input": features})["label"]) == _module_labels(mlp, features)
    assert runtime.platform == "pytorch"


def test_a_pickled_module_needs_trust(sqlite_services: Services, files: dict[str, Path]) -> None:
    with pytest.raises(UntrustedArtifact, match="--trust"):
        _register(sqlite_services, files["pickle"])
    assert sqlite_services.registry.list_models() == []
    assert _register(sqlite_services, files["pickle"], trust=True).format == "torch"


@pytest.mark.parametrize("kind", ["torchscript", "pickle"])
def test_without_a_signature_says_to_give_one(
    kind: str, sqlite_services: Services, files: dict[str, Path]
) -> None:
    with pytest.raises(SignatureRequired) as caught:
        _register(sqlite_services, files[kind], signature=None, trust=True)
    assert "--signature" in caught.value.message
    assert "\n" not in caught.value.message
    assert sqlite_services.registry.list_models() == []


def _state_dict_file(mlp: Any, folder: Path) -> Path:
    import torch

    path = folder / "weights.pt"
    torch.save(mlp.state_dict(), str(path))
    return path


@pytest.mark.parametrize("damage", ["garbage", "truncated-script", "truncated-pickle", "weights"])
def test_refuses_an_unusable_file(
    damage: str, sqlite_services: Services, files: dict[str, Path], mlp: Any, tmp_path: Path
) -> None:
    path = tmp_path / "broken.pt"
    if damage == "garbage":
        path.write_bytes(b"\x00\x01 not a module " * 20)
    elif damage == "weights":
        path = _state_dict_file(mlp, tmp_path)
    else:
        original = files["torchscript" if damage == "truncated-script" else "pickle"].read_bytes()
        path.write_bytes(original[: len(original) // 2])
    with pytest.raises(InvalidArtifact) as caught:
        _register(sqlite_services, path, trust=True)
    assert path.name in caught.value.message
    if damage == "weights":
        assert "OrderedDict" in caught.value.message
        assert "torch.save(module)" in caught.value.message
    assert sqlite_services.registry.list_models() == []


def test_refuses_logits_that_do_not_match_the_class_labels(
    sqlite_services: Services, files: dict[str, Path]
) -> None:
    two = Signature.from_dict(signature_dict(("low", "high")))
    with pytest.raises(InvalidArtifact, match="class_labels"):
        _register(sqlite_services, files["torchscript"], signature=two)
    assert sqlite_services.registry.list_models() == []


def test_signature_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "signature.json"
    path.write_text(json.dumps(signature_dict()), encoding="utf-8")
    assert Signature.from_json_file(path) == SIGNATURE
