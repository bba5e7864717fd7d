"""Registering a Python model: its file and artifacts folder become one stored, hashed
artifact, checked on every load; trust is required; what cannot run is not registered."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from servewell.bootstrap import Services
from servewell.core.signature import Signature
from servewell.errors import ArtifactTampered, InvalidArtifact, InvalidInput, UntrustedArtifact
from servewell.registration.register import RegisterOptions, register_file
from servewell.serving.loading import open_runtime
from serving_models import PYTHON_MODELS, register_python

COLUMN = Signature.from_json_file(PYTHON_MODELS / "column.json")


def _config(folder: Path, sleep_ms: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(f'{{"sleep_ms": {sleep_ms}}}')
    return folder


def test_the_file_and_its_folder_are_one_checked_artifact(
    services: Services, tmp_path: Path
) -> None:
    version = register_python(services, "slow", "slow", artifacts=_config(tmp_path / "a", 1))
    assert version.format == "python"
    assert [(a.role, a.format) for a in version.artifacts] == [("original", "python")]
    stored = services.artifacts.path_of(version.artifact_uri)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == version.sha256
    runtime = open_runtime(services, version)
    assert runtime.predict({"x": np.array([2.5], dtype=np.float32)})["y"].tolist() == [2.5]
    runtime.close()


def test_the_same_files_are_the_same_artifact_and_a_changed_one_is_not(
    sqlite_services: Services, tmp_path: Path
) -> None:
    first = register_python(sqlite_services, "slow", "slow", artifacts=_config(tmp_path / "a", 1))
    again = register_python(sqlite_services, "slow", "slow", artifacts=_config(tmp_path / "b", 1))
    other = register_python(sqlite_services, "slow", "slow", artifacts=_config(tmp_path / "c", 2))
    assert first.sha256 == again.sha256 != other.sha256


@pytest.mark.parametrize("artifact", ["module", "artifacts"])
def test_a_tampered_file_or_folder_is_refused_on_load(
    sqlite_services: Services, tmp_path: Path, artifact: str
) -> None:
    version = register_python(sqlite_services, "slow", "slow", artifacts=_config(tmp_path / "a", 1))
    stored = sqlite_services.artifacts.path_of(version.artifact_uri)
    data = stored.read_bytes()
    target = b"time.sleep" if artifact == "module" else b'"sleep_ms": 1'
    assert data.count(target) == 1
    stored.write_bytes(data.replace(target, target.upper()))
    with pytest.raises(ArtifactTampered, match="modified after registration"):
        open_runtime(sqlite_services, version)


def test_trust_is_required(sqlite_services: Services) -> None:
    with pytest.raises(UntrustedArtifact, match=r"sum\.py is Python code; .* with --trust"):
        register_file(
            sqlite_services,
            PYTHON_MODELS / "sum.py",
            "sum",
            options=RegisterOptions(signature=COLUMN),
        )
    assert sqlite_services.registry.list_models() == []


def test_the_python_options_are_refused_for_other_formats(
    sqlite_services: Services, model_files: dict[str, Path]
) -> None:
    with pytest.raises(InvalidInput, match="for format 'python' only"):
        register_file(
            sqlite_services,
            model_files["onnx"],
            "iris",
            options=RegisterOptions(artifacts=PYTHON_MODELS / "slow_artifacts"),
        )


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("wrong_output", None),  # answers correctly on warm-up's zeros: registers
        ("slow", r"slow\.py: SlowModel\.load\(artifacts_dir\) raised FileNotFoundError"),
        ("no_class", r"no_class\.py defines no model class"),
        ("two_classes", r"defines 2 model classes \(Doubler, Tripler\); name one with --class"),
    ],
)
def test_a_model_that_cannot_load_is_not_registered(
    sqlite_services: Services, model: str, says: str | None
) -> None:
    if says is None:
        assert register_python(sqlite_services, model, model).version == 1
        return
    with pytest.raises(InvalidArtifact, match=says):
        register_python(sqlite_services, model, model)
    assert sqlite_services.registry.list_models() == []


def test_a_model_that_breaks_its_signature_on_warm_up_is_not_registered(
    sqlite_services: Services,
) -> None:
    with pytest.raises(InvalidArtifact, match=r"sum\.py does not run on inputs of its signature"):
        register_python(sqlite_services, "sum", "sum", signature="column.json")  # reads 'y'
