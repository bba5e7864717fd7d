"""The README's flagship example, trained as the README says: ``examples/clicks`` (derived
ratio, datetime difference and datetime parts, a categorical device, messy rows) is
served through its ONNX conversion, whose predictions on the validation rows are the
scikit-learn pipeline's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import yaml

from servewell.bootstrap import build_services
from servewell.core.ref import ModelRef
from servewell.runtime import create_runtime
from servewell.serving.loading import open_runtime
from servewell.settings import Settings
from servewell.training.holdout import load_holdout

EXAMPLE = Path(__file__).parents[2] / "examples" / "clicks"


def _make_clicks(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "make_data.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_clicks().to_csv(path, index=False)


def test_the_clicks_example_serves_through_onnx(invoke, home: Path, tmp_path: Path) -> None:
    data = tmp_path / "clicks.csv"
    _make_clicks(data)
    config = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    config["gate"].pop("max_p99_ms")  # a timing: bench/'s business, not a test's
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(config))
    trained = invoke("train", str(data), "--config", str(pipeline))
    assert trained.exit_code == 0, trained.output
    assert "registered clicks@1 (serves via ONNX)" in trained.stdout

    services = build_services(Settings(home=home))
    try:
        version = services.registry.resolve(ModelRef.parse("clicks"))
        assert version.has_artifact("onnx")
        holdout = load_holdout(services, version)  # the validation rows it carries
        served = open_runtime(services, version)
        assert served.platform == "onnxruntime_onnx"
        artifact = version.artifact("original")
        path = services.artifacts.fetch(artifact.uri, artifact.sha256)
        original = create_runtime("sklearn", path, services.settings.runtime, version.signature)
        original.load()
        on_onnx, on_sklearn = served.predict(holdout.inputs), original.predict(holdout.inputs)
    finally:
        services.close()
    assert holdout.rows > 1000
    np.testing.assert_array_equal(on_onnx["label"], on_sklearn["label"])
    np.testing.assert_allclose(on_onnx["probabilities"], on_sklearn["probabilities"], atol=1e-5)
