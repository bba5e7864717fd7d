"""`optimize`: conversion agreement, quantization, the accuracy gate, lineage, and the
optimized version served through the registry answering as its report promised."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.errors import (
    GateFailed,
    InvalidData,
    InvalidInput,
    ModelNotFound,
    VersionNotFound,
)
from servewell.optimize.benchmark import BenchmarkPlan
from servewell.optimize.result import OptimizeOptions, OptimizeResult
from servewell.optimize.run import optimize_version, register_optimized
from servewell.registration.register import RegisterOptions, register_estimator, register_file
from servewell.registry import ModelVersion
from servewell.serving.loading import open_runtime
from servewell.stats import build_profile, classification_metrics
from text_models import eval_csv, text_model

QUICK = BenchmarkPlan(single_runs=8, batches=2, rounds=2)


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.data.astype(np.float32)
    frame["species"] = data.target
    return frame


@pytest.fixture(scope="session")
def iris_csv(tmp_path_factory: pytest.TempPathFactory, iris_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    iris_frame.to_csv(path, index=False)
    return path


def _fit(estimator: Any, frame: pd.DataFrame) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of small MLPs
        return model.fit(frame.drop(columns="species"), frame["species"])


@pytest.fixture(scope="session")
def mlp(iris_frame: pd.DataFrame) -> Any:
    from sklearn.neural_network import MLPClassifier

    return _fit(MLPClassifier((128, 64), max_iter=3000, random_state=0), iris_frame)


@pytest.fixture(scope="session")
def broken_by_int8(iris_frame: pd.DataFrame) -> Any:
    """An MLP that int8 ruins: one dead hidden unit with an input weight of 1000.

    In float the unit changes nothing (its outgoing weights are 0). Dynamic int8 gives
    the second layer's input one scale per batch, taken from that unit's huge
    activation, so every other unit's activation rounds to 0: the quantized model
    answers one class for everything. (Per-channel weight scales do not help here.)
    256 units: enough weights for int8 and fp16 to make the file smaller.
    """
    from sklearn.neural_network import MLPClassifier

    model = _fit(MLPClassifier((256,), max_iter=3000, random_state=0), iris_frame)
    mlp = model[-1]
    mlp.coefs_[0] = mlp.coefs_[0].copy()
    mlp.coefs_[1] = mlp.coefs_[1].copy()
    mlp.coefs_[0][:, -1] = 1000.0
    mlp.coefs_[1][-1, :] = 0.0
    return model


def _register(
    services: Services, name: str, model: Any, frame: pd.DataFrame, **extra: Any
) -> ModelVersion:
    sample = {"input": frame.drop(columns="species").to_numpy(np.float32)}
    return register_estimator(
        services, name, model, options=RegisterOptions(sample=sample, **extra)
    )


def _options(iris_csv: Path, **changes: Any) -> OptimizeOptions:
    return OptimizeOptions(
        **{"eval_path": iris_csv, "target": "species", "benchmark": QUICK, **changes}
    )


def _served_accuracy(services: Services, version: ModelVersion, frame: pd.DataFrame) -> float:
    runtime = open_runtime(services, version)
    outputs = runtime.predict({"input": frame.drop(columns="species").to_numpy(np.float32)})
    runtime.close()
    return classification_metrics(
        frame["species"].to_numpy(), outputs["label"], labels=(0, 1, 2)
    ).accuracy


# --- conversion ------------------------------------------------------------------------------


def _estimators() -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logistic": LogisticRegression(max_iter=500),
        "mlp": MLPClassifier((16,), max_iter=2000, random_state=0),
        "random-forest": RandomForestClassifier(n_estimators=20, random_state=0),
        "gradient-boosting": GradientBoostingClassifier(n_estimators=20, random_state=0),
        "decision-tree": DecisionTreeClassifier(random_state=0),
        "svc": SVC(probability=True, random_state=0),
    }


@pytest.mark.parametrize("kind", list(_estimators()))
@pytest.mark.parametrize("stored_conversion", [True, False])
def test_converts_estimators_to_onnx_that_agree(
    kind: str,
    stored_conversion: bool,
    sqlite_services: Services,
    iris_frame: pd.DataFrame,
    iris_csv: Path,
) -> None:
    model = _fit(_estimators()[kind], iris_frame)
    source = _register(sqlite_services, kind, model, iris_frame, convert=stored_conversion)
    assert source.has_artifact("onnx") is stored_conversion

    result = optimize_version(sqlite_services, source.ref, _options(iris_csv, quantize="none"))

    assert result.format == "onnx"
    assert result.label_agreement >= 0.99
    # Trees compare float32 thresholds in ONNX: a row on a split's edge may take the other
    # branch in one tree of twenty, moving a probability by 1/20.
    assert result.max_abs_diff <= 0.05 + 1e-6
    assert result.after.accuracy == pytest.approx(result.before.accuracy, abs=0.01)
    assert result.passed


# --- quantization and the gate ------------------------------------------------------------


def test_dynamic_int8_registers_a_child_that_serves_what_its_report_promised(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    source = _register(sqlite_services, "iris", mlp, iris_frame)
    result = optimize_version(
        sqlite_services, ModelRef.parse("iris@1"), _options(iris_csv, quantize="dynamic-int8")
    )
    assert result.passed, result.failures
    assert result.after.size_bytes < result.before.size_bytes
    version = register_optimized(sqlite_services, result, alias="staging")

    assert version.version == 2
    assert version.parent == source.ref
    assert version.aliases == ("staging",)
    assert version.tags["optimized"] == "dynamic-int8"
    report = version.metrics["optimization"]
    assert report["source"] == "iris@1"
    assert report["after"]["metrics"]["accuracy"] == version.metrics["accuracy"]
    assert set(report["before"]) >= {"size_bytes", "p50_ms", "p99_ms", "throughput_rows_s"}
    assert version.has_artifact("optimization.json")
    served = sqlite_services.registry.resolve(ModelRef.parse("iris@staging"))
    assert (
        _served_accuracy(sqlite_services, served, iris_frame)
        == report["after"]["metrics"]["accuracy"]
    )


def test_the_gate_refuses_an_int8_model_that_lost_its_accuracy(
    sqlite_services: Services, broken_by_int8: Any, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    source = _register(sqlite_services, "fragile", broken_by_int8, iris_frame)
    assert _served_accuracy(sqlite_services, source, iris_frame) > 0.95  # float is fine

    result = optimize_version(sqlite_services, source.ref, _options(iris_csv))

    assert not result.passed
    assert result.after.accuracy < 0.5
    assert result.label_agreement < 0.5
    messages = " ".join(result.failures)
    assert "below --min-accuracy 0.9000" in messages
    assert "more than --max-accuracy-drop 0.0100" in messages
    with pytest.raises(GateFailed, match="nothing registered"):
        register_optimized(sqlite_services, result)
    assert [v.version for v in sqlite_services.registry.list_versions("fragile")] == [1]


def test_a_looser_gate_lets_the_same_model_through(
    sqlite_services: Services, broken_by_int8: Any, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    source = _register(sqlite_services, "fragile", broken_by_int8, iris_frame)
    options = _options(iris_csv, quantize="fp16", min_accuracy=0.5, max_accuracy_drop=0.5)
    result = optimize_version(sqlite_services, source.ref, options)
    assert result.passed, result.failures
    assert result.label_agreement > 0.95  # fp16 keeps the outlier and the rest


def test_static_int8_with_calibration_rows(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    source = _register(sqlite_services, "iris", mlp, iris_frame)
    options = _options(iris_csv, quantize="static-int8", calibration_path=iris_csv)
    result = optimize_version(sqlite_services, source.ref, options)
    assert result.calibration is not None
    assert "150 rows" in result.calibration
    assert result.label_agreement > 0.9
    version = register_optimized(sqlite_services, result)
    assert version.parent == source.ref


def test_static_int8_samples_calibration_rows_from_the_reference_profile(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    features = iris_frame.drop(columns="species")
    profile = build_profile(
        {name: features[name].to_numpy() for name in features},
        dict.fromkeys(features, "numeric"),
    )
    import json

    source = _register(
        sqlite_services,
        "iris",
        mlp,
        iris_frame,
        attachments={"profile.json": json.dumps(profile).encode()},
    )
    result = optimize_version(
        sqlite_services, source.ref, _options(iris_csv, quantize="static-int8")
    )
    assert result.calibration == "256 rows sampled from profile.json"
    assert result.label_agreement > 0.9
    version = register_optimized(sqlite_services, result)
    assert version.has_artifact("profile.json")  # the data's profile carries over


def test_the_validation_split_recorded_with_a_version_is_the_default_evaluation(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame
) -> None:
    source = _register(
        sqlite_services,
        "iris",
        mlp,
        iris_frame,
        params={"target": "species"},
        attachments={"validation.csv": iris_frame.iloc[::3].to_csv(index=False).encode()},
    )
    result = optimize_version(
        sqlite_services, source.ref, OptimizeOptions(quantize="none", benchmark=QUICK)
    )
    assert result.evaluation == "iris@validation.csv"
    assert result.evaluation_rows == 50


# --- bad input: clear errors, nothing registered -------------------------------------------


def test_a_version_that_does_not_exist(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    with pytest.raises(ModelNotFound):
        optimize_version(sqlite_services, ModelRef.parse("iris@9"), _options(iris_csv))
    _register(sqlite_services, "iris", mlp, iris_frame)
    with pytest.raises(VersionNotFound, match="model 'iris' has no version 9"):
        optimize_version(sqlite_services, ModelRef.parse("iris@9"), _options(iris_csv))
    assert len(sqlite_services.registry.list_versions("iris")) == 1


def test_int8_on_a_tree_ensemble_names_its_operators(
    sqlite_services: Services, iris_frame: pd.DataFrame, iris_csv: Path
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = _fit(RandomForestClassifier(n_estimators=10, random_state=0), iris_frame)
    source = _register(sqlite_services, "forest", model, iris_frame)
    for quantization in ("dynamic-int8", "fp16"):
        with pytest.raises(InvalidInput, match="TreeEnsembleClassifier"):
            optimize_version(sqlite_services, source.ref, _options(iris_csv, quantize=quantization))
    assert len(sqlite_services.registry.list_versions("forest")) == 1


def test_unknown_quantization(sqlite_services: Services, iris_csv: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown quantization 'int4'"):
        optimize_version(
            sqlite_services, ModelRef.parse("iris@1"), _options(iris_csv, quantize="int4")
        )


def test_evaluation_columns_that_do_not_match_the_signature(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame, tmp_path: Path
) -> None:
    source = _register(sqlite_services, "iris", mlp, iris_frame)
    renamed = tmp_path / "renamed.csv"
    iris_frame.rename(columns={"petal width (cm)": "petal_width"}).to_csv(renamed, index=False)
    with pytest.raises(InvalidData, match=r"lacks the model's input column.*petal width"):
        optimize_version(sqlite_services, source.ref, _options(renamed))
    with pytest.raises(InvalidData, match="no target column 'kind'"):
        optimize_version(sqlite_services, source.ref, _options(renamed, target="kind"))
    text = tmp_path / "text.csv"
    iris_frame.assign(**{"sepal length (cm)": "long"}).to_csv(text, index=False)
    with pytest.raises(InvalidData, match=r"sepal length \(cm\) .* not numbers"):
        optimize_version(sqlite_services, source.ref, _options(text))


def test_calibration_data_too_small(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame, iris_csv: Path, tmp_path: Path
) -> None:
    source = _register(sqlite_services, "iris", mlp, iris_frame)
    small = tmp_path / "small.csv"
    iris_frame.head(10).to_csv(small, index=False)
    options = _options(iris_csv, quantize="static-int8", calibration_path=small)
    with pytest.raises(InvalidData, match="calibration data has 10 rows"):
        optimize_version(sqlite_services, source.ref, options)
    with pytest.raises(InvalidInput, match="give --calibration DATA"):
        optimize_version(sqlite_services, source.ref, _options(iris_csv, quantize="static-int8"))


def test_no_evaluation_data_anywhere(
    sqlite_services: Services, mlp: Any, iris_frame: pd.DataFrame
) -> None:
    source = _register(sqlite_services, "iris", mlp, iris_frame)
    with pytest.raises(InvalidInput, match=r"no validation split recorded.*--eval DATA"):
        optimize_version(sqlite_services, source.ref, OptimizeOptions(benchmark=QUICK))


# --- the MiniLM text model ----------------------------------------------------------------


@pytest.fixture(scope="session")
def text_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return text_model(tmp_path_factory.getbasetemp() / "text-model")


def test_int8_text_model_is_smaller_and_serves_the_promised_labels(
    sqlite_services: Services, text_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = register_file(sqlite_services, text_model_path, "tickets", format="text")
    evaluation = eval_csv(tmp_path_factory.getbasetemp() / "text-model")
    options = OptimizeOptions(
        quantize="dynamic-int8",
        eval_path=evaluation,
        target="topic",
        min_accuracy=0.5,
        max_accuracy_drop=0.1,
        benchmark=QUICK,
    )
    result: OptimizeResult = optimize_version(sqlite_services, source.ref, options)
    assert result.format == "text"
    assert result.after.size_bytes < 0.3 * result.before.size_bytes
    version = register_optimized(sqlite_services, result)
    assert version.format == "text"
    assert version.parent == source.ref

    frame = pd.read_csv(evaluation)
    runtime = open_runtime(sqlite_services, version)
    texts = np.array([t.encode() for t in frame["text"]], dtype=np.object_)
    labels = runtime.predict({"text": texts})["label"]
    accuracy = float(
        np.mean([label.decode() == t for label, t in zip(labels, frame["topic"], strict=True)])
    )
    assert accuracy == version.metrics["optimization"]["after"]["metrics"]["accuracy"]
