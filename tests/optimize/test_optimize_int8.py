"""How int8 is done: which operator types (the weighted ones by default), per channel or
per tensor, and the calibration method of static int8; each option refused where it does
not apply. On the breast-cancer demo (trained through servewell's pipeline) and on
float32 graphs built here (tests/graph_models.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from graph_models import mlp_classifier, self_labelled_rows, signature
from servewell.bootstrap import Services, build_services
from servewell.errors import InvalidInput
from servewell.optimize.benchmark import BenchmarkPlan
from servewell.optimize.plan import CALIBRATION_METHODS
from servewell.optimize.result import OptimizeOptions
from servewell.optimize.run import optimize_version
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry import ModelVersion
from servewell.settings import Settings
from servewell.training.demo import demo_config, demo_dataset
from servewell.training.run import run_pipeline
from text_models import eval_csv, text_model

QUICK = BenchmarkPlan(single_runs=5, batches=2, rounds=2)


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    built = build_services(Settings(home=tmp_path_factory.mktemp("int8") / "home"))
    yield built
    built.close()


@pytest.fixture(scope="module")
def demo(access: Services) -> ModelVersion:
    """breast-cancer@1 as ``servewell demo`` trains it: scaler + MLP(64, 32), a profile."""
    result = run_pipeline(demo_dataset(), demo_config(), access)
    assert result.version is not None
    return result.version


@pytest.fixture(scope="module")
def fragile(
    access: Services, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelVersion, Path]:
    folder = tmp_path_factory.mktemp("fragile")
    model = mlp_classifier(folder / "fragile.onnx", dtype=np.float32, dead_outlier=True)
    rows = self_labelled_rows(model, folder / "rows.csv", dtype=np.float32)
    options = RegisterOptions(signature=signature(np.float32))
    return register_file(access, model, "fragile", options=options), rows


def test_static_int8_quantizes_the_weighted_operators_and_keeps_the_demo_accurate(
    access: Services, demo: ModelVersion
) -> None:
    result = optimize_version(
        access, demo.ref, OptimizeOptions(quantize="static-int8", benchmark=QUICK)
    )

    assert result.passed, result.failures
    assert result.calibration == "256 rows sampled from profile.json"
    assert result.after.accuracy >= result.before.accuracy - 0.01
    assert result.quantized_operators == ("MatMul",)
    report = result.to_dict()["int8"]
    assert report["per_channel"] is True
    assert report["calibration_method"] == "minmax"
    assert "Relu" not in report["operators"]


def test_quantizing_every_operator_loses_the_demo_its_accuracy_and_the_gate_says_so(
    access: Services, demo: ModelVersion
) -> None:
    """'all' quantizes the graph's Split of the raw input too: 30 columns from 0.001 to
    4,000 share one int8 scale, so the small ones round away. The reason 'weighted' is
    the default. Same calibration rows as the test above."""
    options = OptimizeOptions(quantize="static-int8", operators="all", benchmark=QUICK)

    result = optimize_version(access, demo.ref, options)

    assert not result.passed
    assert result.calibration == "256 rows sampled from profile.json"
    assert result.before.accuracy - result.after.accuracy > 0.05
    assert {"MatMul", "Relu", "Split"} <= set(result.quantized_operators)
    assert "more than --max-accuracy-drop" in " ".join(result.failures)


@pytest.mark.parametrize("method", ["dynamic-int8", "static-int8"])
def test_per_channel_scales_keep_a_layer_with_one_large_weight(
    access: Services, fragile: tuple[ModelVersion, Path], method: str
) -> None:
    source, rows = fragile
    calibration = rows if method == "static-int8" else None

    def optimized(per_channel: bool) -> float:
        options = OptimizeOptions(
            quantize=method,
            per_channel=per_channel,
            eval_path=rows,
            target="y",
            calibration_path=calibration,
            benchmark=QUICK,
        )
        result = optimize_version(access, source.ref, options)
        assert result.before.accuracy == 1.0
        assert result.to_dict()["int8"]["per_channel"] is per_channel
        return result.after.accuracy

    assert optimized(per_channel=False) < 0.7  # every real first-layer weight rounds to 0
    assert optimized(per_channel=True) >= 0.98


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_every_calibration_method_runs_quietly_and_is_recorded(
    access: Services, demo: ModelVersion, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = OptimizeOptions(
        quantize="static-int8", calibration_method=method, operators="MatMul", benchmark=QUICK
    )
    result = optimize_version(access, demo.ref, options)
    assert result.to_dict()["int8"]["calibration_method"] == method
    assert result.quantized_operators == ("MatMul",)
    assert result.label_agreement > 0.9
    assert capsys.readouterr().out == ""  # the histogram calibrators print; --json owns stdout


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantize": "fp16", "operators": "MatMul"}, "--operators applies to dynamic-int8 and"),
        ({"quantize": "none", "per_channel": False}, "--per-channel/--per-tensor applies to"),
        (
            {"quantize": "dynamic-int8", "calibration_method": "entropy"},
            "--calibration-method applies to static-int8 only, not to dynamic-int8",
        ),
        (
            {"quantize": "fp16", "calibration_path": Path("rows.csv")},
            "--calibration applies to static-int8 only, not to fp16",
        ),
        (
            {"quantize": "static-int8", "calibration_method": "kl"},
            "unknown calibration method 'kl'; choose one of minmax, entropy",
        ),
        (
            {"quantize": "dynamic-int8", "operators": "MatMul,Softmax"},
            "--operators: dynamic-int8 has no int8 form for Softmax",
        ),
        ({"quantize": "static-int8", "operators": " , "}, "no int8 form for nothing"),
    ],
)
def test_options_that_do_not_apply_are_refused_before_any_work(
    access: Services, demo: ModelVersion, changes: dict[str, object], message: str
) -> None:
    options = OptimizeOptions(benchmark=QUICK, **changes)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        optimize_version(access, demo.ref, options)


def test_static_int8_of_the_text_model_calibrates_on_texts_and_refuses_a_histogram(
    access: Services, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Token ids are as long as each batch's longest text: the histogram calibrators,
    which stack every batch, cannot take them; minmax can."""
    folder = tmp_path_factory.getbasetemp() / "text-model"
    source = register_file(access, text_model(folder), "tickets", format="text")
    texts = eval_csv(folder)

    def options(**changes: object) -> OptimizeOptions:
        values: dict[str, object] = {
            "quantize": "static-int8",
            "eval_path": texts,
            "target": "topic",
            "calibration_path": texts,
            "min_accuracy": 0.5,
            "max_accuracy_drop": 0.1,
            "benchmark": QUICK,
            **changes,
        }
        return OptimizeOptions(**values)  # type: ignore[arg-type]

    refusal = r"--calibration-method entropy needs calibration batches of one shape; .*input_ids"
    with pytest.raises(InvalidInput, match=refusal):
        optimize_version(access, source.ref, options(calibration_method="entropy"))
    result = optimize_version(access, source.ref, options())
    assert result.passed, result.failures
    assert "MatMul" in result.quantized_operators
    assert result.after.size_bytes < 0.5 * result.before.size_bytes
