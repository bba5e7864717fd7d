"""A version to optimize, as an ONNX file: its own graph, its stored conversion, or one made
now (skl2onnx for scikit-learn; ``torch.onnx.export`` for a ``torch`` module, traced on
the first evaluation rows)."""

from __future__ import annotations

from pathlib import Path

from servewell.errors import ConversionFailed
from servewell.registration.convert import convert_sklearn
from servewell.registry import ONNX, ORIGINAL, ModelVersion, RegistryAccess
from servewell.runtime.sklearn import SklearnRuntime
from servewell.serving.loading import open_runtime
from servewell.training.holdout import Holdout

#: Evaluation rows the ONNX conversion of a scikit-learn model is checked on.
CONVERSION_ROWS = 256
#: Rows a torch module is traced on when exported (more than one: the batch stays dynamic).
EXPORT_ROWS = 8
#: Formats whose artifact is an ONNX graph that optimize can work on as it is.
ONNX_FORMATS = ("onnx", "text")


def source_onnx(
    access: RegistryAccess, source: ModelVersion, holdout: Holdout, work: Path
) -> tuple[Path, str]:
    """The source as an ONNX file (its own, its stored conversion, or converted now)."""
    target = work / "source.onnx"
    if source.format in ONNX_FORMATS or source.has_artifact(ONNX):
        role = ORIGINAL if source.format in ONNX_FORMATS else ONNX
        artifact = source.artifact(role)
        target.write_bytes(access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes())
        return target, "text" if source.format == "text" else "onnx"
    if source.format == "torch":
        return _export_torch(access, source, holdout, target), "onnx"
    if source.format != "sklearn":
        raise ConversionFailed(f"optimize cannot convert a '{source.format}' version to ONNX")
    runtime = open_runtime(access, source)  # no ONNX artifact: this is the original
    assert isinstance(runtime, SklearnRuntime)
    conversion = convert_sklearn(runtime.estimator, source.signature, holdout.head(CONVERSION_ROWS))
    runtime.close()
    target.write_bytes(conversion.onnx_bytes)
    return target, "onnx"


def _export_torch(
    access: RegistryAccess, source: ModelVersion, holdout: Holdout, target: Path
) -> Path:
    """A torch version's module, traced on evaluation rows, as ONNX."""
    from servewell.export.torch import export_torch_model
    from servewell.runtime.torch import TorchRuntime

    runtime = open_runtime(access, source)  # no ONNX artifact: this is the original
    assert isinstance(runtime, TorchRuntime)
    try:
        return export_torch_model(
            runtime.module, source.signature, holdout.head(EXPORT_ROWS), target
        )
    finally:
        runtime.close()
