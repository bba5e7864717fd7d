"""`optimize` on a torch version: exported with torch.onnx.export, quantized, verified
against the module, registered as a child that serves what its report promised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from servewell.bootstrap import Services
from servewell.core.signature import Signature
from servewell.errors import ConversionFailed
from servewell.optimize.benchmark import BenchmarkPlan
from servewell.optimize.result import OptimizeOptions
from servewell.optimize.run import optimize_version, register_optimized
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry import ModelVersion
from servewell.serving.loading import open_runtime
from servewell.stats import classification_metrics
from torch_models import (
    CLASSES,
    FEATURES,
    require_torch,
    save_both,
    signature_dict,
    train_mlp,
    write_eval_csv,
)

QUICK = BenchmarkPlan(single_runs=5, batches=2, rounds=2)
SIGNATURE = Signature.from_dict(signature_dict())


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_torch()
    folder = tmp_path_factory.mktemp("torch-optimize")
    return {**save_both(train_mlp(), folder), "eval": write_eval_csv(folder)}


def _register(services: Services, path: Path) -> ModelVersion:
    options = RegisterOptions(signature=SIGNATURE)
    return register_file(services, path, "bands", trust=True, options=options)


def _options(files: dict[str, Path], **changes: Any) -> OptimizeOptions:
    return OptimizeOptions(
        **{"eval_path": files["eval"], "target": "band", "benchmark": QUICK, **changes}
    )


def _served(services: Services, version: ModelVersion, eval_csv: Path) -> tuple[Any, float]:
    frame = pd.read_csv(eval_csv)
    runtime = open_runtime(services, version)
    labels = runtime.predict({"input": frame[list(FEATURES)].to_numpy(np.float32)})["label"]
    runtime.close()
    truth = frame["band"].to_numpy()
    accuracy = classification_metrics(truth, labels, labels=CLASSES).accuracy
    return labels, accuracy


@pytest.mark.parametrize(
    ("kind", "quantize"),
    [("torchscript", "none"), ("pickle", "none"), ("torchscript", "dynamic-int8")],
)
def test_optimize_registers_an_onnx_child_that_serves_what_its_report_promised(
    kind: str, quantize: str, sqlite_services: Services, files: dict[str, Path]
) -> None:
    source = _register(sqlite_services, files[kind])
    source_labels, source_accuracy = _served(sqlite_services, source, files["eval"])

    result = optimize_version(sqlite_services, source.ref, _options(files, quantize=quantize))

    assert result.passed, result.failures
    assert result.before.format == "torch"
    assert result.format == "onnx"
    assert result.before.accuracy == source_accuracy
    assert result.label_agreement >= 0.99
    if quantize == "none":
        assert result.max_abs_diff < 1e-4
    child = register_optimized(sqlite_services, result)
    assert (child.version, child.parent, child.format) == (2, source.ref, "onnx")
    assert child.signature == SIGNATURE
    labels, accuracy = _served(sqlite_services, child, files["eval"])
    assert accuracy == child.metrics["optimization"]["after"]["metrics"]["accuracy"]
    assert np.mean(labels == source_labels) == result.label_agreement


def test_the_exported_file_carries_the_signature(
    sqlite_services: Services, files: dict[str, Path], tmp_path: Path
) -> None:
    source = _register(sqlite_services, files["torchscript"])
    result = optimize_version(sqlite_services, source.ref, _options(files, quantize="none"))
    path = tmp_path / "child.onnx"
    path.write_bytes(result.artifact)
    # Registered with no signature given, the file's own embedded one is used.
    child = register_file(sqlite_services, path, "from-file")
    assert child.signature == SIGNATURE


def test_a_module_that_cannot_be_exported_is_named(
    sqlite_services: Services, files: dict[str, Path], tmp_path: Path
) -> None:
    import torch

    from torch_modules import Unexportable

    path = tmp_path / "unexportable.pt"
    torch.save(Unexportable().eval(), str(path))
    source = _register(sqlite_services, path)

    with pytest.raises(ConversionFailed, match=r"cannot export Unexportable: .*cummax"):
        optimize_version(sqlite_services, source.ref, _options(files, min_accuracy=0.0))
    assert [v.version for v in sqlite_services.registry.list_versions("bands")] == [1]
